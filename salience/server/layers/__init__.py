"""What a document shows in the editor, as pure functions of a `View`: the heatmap's semantic tokens,
hovers, inlay hints, diagnostics, code lenses and `salience/scores` payload (`heatmap`), with the section
(`section_lenses`) and compare-mode (`compare`) layers composed into them.
"""
