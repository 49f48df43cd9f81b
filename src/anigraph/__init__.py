"""anigraph: videos into animated images (GIF, WebP), speaking Tencent Cloud VOD's API."""

__version__ = "0.1.0"
