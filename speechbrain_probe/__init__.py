"""speechbrain-probe: hear what each layer of an end-to-end ASR model keeps."""

__version__ = "0.1.0"
