"""What a person looks at: a graph described with FLOPs and weight statistics (graphview),
drawn as SVG (drawing), the model page (pages), the compare page (diff_page), and the offline
template for dvc plots (plots).

Imports: core, tfapi, safety, graph, formats, freezing, versions (the compare page).
"""
