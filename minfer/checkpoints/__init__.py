"""Checkpoints: reading Hugging Face-format directories (`loading`, `safetensors_io`), where
minfer's own live and writing them (`store`). `minfer.load_model` is `loading.load_model`.
"""
