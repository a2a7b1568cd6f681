"""Reports: from stored results to a page that helps a reader choose a framework.

- `content`: what a report says (headline, leaderboards, ranking, failures, environment), from results files only;
- `choose`: the weighted score behind "choose a framework", shared by the page's script and the static ranking;
- `rosetta`: the adapters' model and training-step code, read with `ast`, never imported;
- `html`, `markdown`, `spreadsheet`: the three formats; `charts`: the SVG figures; `output`: where files go;
- `compare`: what changed between two runs (`bench compare`).
"""

FORMATS = ("html", "md", "csv")
