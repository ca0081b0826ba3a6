"""iaseg: importance-aware real-time semantic segmentation.

Implements Xiang, Wang, Yang, "Importance-Aware Semantic Segmentation with Efficient Pyramidal
Context Network for Navigational Assistant Systems" (ITSC 2019): ERF-PSPNet, BiERF-PSPNet and the
re-designed importance-aware loss (IAL).
"""
__version__ = "0.1.0"
