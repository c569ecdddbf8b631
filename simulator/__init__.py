"""The matchday capacity model: SimPy control plane and fast data-plane kernels."""
