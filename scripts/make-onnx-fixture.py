"""Writes test/fixtures/tiny-cnn.onnx, a tiny image CNN exported from PyTorch (the form CLIP / DINOv2
image encoders come in: NCHW float input, ImageNet-normalised), and the features PyTorch computes
for a fixed input, so the tests check our preprocessing and ONNX path against PyTorch itself.

Run once with Debian's python3-torch: /usr/bin/python3 scripts/make-onnx-fixture.py
"""
import json
import torch

torch.manual_seed(0)


class TinyCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 12, 3, padding=1)

    def forward(self, x):
        spatial = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return spatial.mean(dim=(2, 3)), spatial


model = TinyCnn().eval()
example = torch.rand(2, 3, 16, 16)
torch.onnx.export(
    model,
    example,
    "test/fixtures/tiny-cnn.onnx",
    input_names=["pixel_values"],
    output_names=["pooled", "spatial"],
    dynamic_axes={"pixel_values": {0: "batch"}, "pooled": {0: "batch"}, "spatial": {0: "batch"}},
    opset_version=13,
)
# a fixed image in [0, 1], HWC: pixel (y, x, c) = ((y * 16 + x) * 3 + c) % 255 / 254
hwc = torch.tensor([[[((y * 16 + x) * 3 + c) % 255 / 254 for c in range(3)] for x in range(16)] for y in range(16)])
mean = torch.tensor([0.485, 0.456, 0.406])
std = torch.tensor([0.229, 0.224, 0.225])
nchw = ((hwc - mean) / std).permute(2, 0, 1).unsqueeze(0)
with torch.no_grad():
    pooled, _ = model(nchw)
json.dump({"pooled": pooled[0].tolist()}, open("test/fixtures/tiny-cnn.expected.json", "w"))
print("wrote test/fixtures/tiny-cnn.onnx", pooled.shape)
