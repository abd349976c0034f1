"""Sequential Integrated Gradients, with its forward-mode and chunked-attention passes."""
