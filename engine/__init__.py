"""OneProt engine: data, encoders, alignment training, embedding, search, evaluation.

Pure library: never imports `explorer`.
"""

__version__ = "0.1.0"
