"""Compute helpers the methods share: gradients, batch sizes, scoped model patches, the KV prefix,
the allocator during long passes, and running within memory."""
