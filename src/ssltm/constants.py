"""The suite's constants, shared by every layer (nothing here imports the rest of the package)."""

#: label value ignored by losses and metrics, in every data set of the suite (the sample contract)
IGNORE_INDEX = 255

#: ImageNet statistics: frames are normalised with them for the backbones, and undone for display
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
