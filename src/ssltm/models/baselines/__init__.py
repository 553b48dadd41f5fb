"""The comparison baselines of the paper's supplementary Table 1, on the suite's backbones.

Image-based (the query frame alone): DeepLabV3+, PSPNet, UPerNet (decoders from
segmentation-models-pytorch), OCRNet and Segmenter (small modules written here).
Video-based: NetWarp (flow-warped features of the previous frame), ETC (a per-frame network with
a flow-warped temporal consistency loss) and TCB (attention from the query to the previous frames).
All share the segmenter interface: `model(frames B T 3 H W, reference B 3 H W) ->
SegmenterOutput` (models/segmenter.py).
"""
