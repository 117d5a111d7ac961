"""dca's language models: a tokenizer trained here, tiny causal LMs built from a config, and the
registry that turns ``dca:<recipe>`` names into saved ``from_pretrained`` directories.

Everything heavy (torch, transformers, tokenizers) is imported inside the functions that use it.
"""
