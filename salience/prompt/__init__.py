"""What a prompt file says, torch-free: the document (front matter, messages, placeholders), its `expect:`
and `sections:` blocks, its sections and its words. The engine reads documents; the views read sections
and words; none of it needs a model.
"""
