"""Files: uploads, import sources and export results (Keboola's Files), one module per concept.

- :mod:`.service`: the commands the faces call (prepare, upload, list, detail, tags, delete,
  signed download), typed inputs in and views (:mod:`.views`) out;
- :mod:`.rows`: the catalog rows: names, expiry, who sees a file, look-ups and writes;
- :mod:`.query`: Keboola's ``q`` search over tags; :mod:`.tags`: tag rules, tagging, filters;
- :mod:`.uploads`: bytes in (size-checked uploads, finished local files such as export results);
- :mod:`.sources`: bytes out (a local path or stream for importers, a headed CSV for exports);
- :mod:`.links`: the signed, token-free download and upload URLs;
- :mod:`.federation`: the temporary S3 credentials of a file, and what a request signed with them reaches;
- :mod:`.jobs`: the ``files.delete`` job.

The names below are what the rest of the core (table imports and exports, the Export API) uses.
"""

from entrepot.core.files.links import DOWNLOAD, download_url
from entrepot.core.files.rows import get, safe_name
from entrepot.core.files.sources import is_gzip, open_local
from entrepot.core.files.uploads import create_from_path

__all__ = [
    "DOWNLOAD",
    "create_from_path",
    "download_url",
    "get",
    "is_gzip",
    "open_local",
    "safe_name",
]
