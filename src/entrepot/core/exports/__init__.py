"""The Export API's core (seed 004): export jobs with filters into csv/json/parquet/excel, and templates.

* :mod:`.service` holds the commands of the face (datasources, exports, templates), returning views;
* :mod:`.downloads` serves the files, by token or presigned URL;
* :mod:`.jobs` is the job that writes a file (``exports.run``) and the retention sweep;
* :mod:`.store` looks exports and datasources up for the three above;
* :mod:`.spec` validates and normalises formats, filters and options;
* :mod:`.query` compiles filters to one parameterised DuckDB query over a lake table;
* :mod:`.writer` writes the rows with ``COPY ... TO`` and reports progress;
* :mod:`.templates` holds saved configurations (user, shared and built-in system ones).
"""
