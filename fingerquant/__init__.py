"""fingerquant: finger identification on capacitive touchscreen images, quantized with PD-Quant."""

__version__ = "0.1.0"
