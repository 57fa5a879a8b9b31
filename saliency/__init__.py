"""saliency: explain face gender classifiers (CAM, Grad-CAM, IG, average faces, regions)."""

__version__ = "0.1.0"
