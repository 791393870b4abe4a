"""Checkpoints: reading Hugging Face-format directories (`loading`, `safetensors_io`, and
`tokenizer_files` for their tokenizers and chat templates), where minfer's own live and writing
them (`store`). `minfer.load_model` is `loading.load_model`, `minfer.load_tokenizer`
`tokenizer_files.load_tokenizer`.
"""
