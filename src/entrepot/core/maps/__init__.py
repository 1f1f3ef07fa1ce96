"""CARTO's Maps API: map configs, named templates, layergroups and their tiles.

``config.py`` checks a MapConfig (layers and their options); ``templates.py`` keeps named maps
and substitutes their placeholders; ``layergroups.py`` instantiates a config for a caller
(every layer's SQL authorised like the SQL API's) and records what it reads; ``tiles.py``
serves a layergroup's tiles through the cache. The formats are their own modules: ``mvt.py``
(vector tiles by DuckDB's ``ST_AsMVT``), ``cartocss.py`` (CartoCSS to Mapnik styles) and
``raster.py`` (PNG tiles, UTFGrids and static images by Mapnik).
"""
