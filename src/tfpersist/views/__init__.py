"""What a person looks at: a graph described with FLOPs and weight statistics (graphview),
drawn as SVG (drawing), the model page (pages), the compare page (diff_page), and the offline
template for dvc plots (plots).

Imports: the core, safety, graph, formats, freezing, running and versions (the compare page).
"""
