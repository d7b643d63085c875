"""Tooling around the product, not shipped in it: deploy, bench, costs, localaws (local
AWS stand-ins) and model (the ONNX build)."""
