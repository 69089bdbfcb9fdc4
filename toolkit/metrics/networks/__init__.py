"""The networks behind the learned metrics, one module each, with state-dict keys that match the released files.

Each module builds its network, loads its weights from the registry (``toolkit.weights``) with
``torch.load(weights_only=True)`` and strict key checking, and states the input it expects.
"""
