"""Object storage: spaces of a project and the objects in them (the DCSS model, S3's vocabulary).

- :mod:`.service`: the commands of the face, one per request (space management; open a space
  for a token or a presigned URL, then one operation).
- :mod:`.spaces`: storage spaces, their look-ups, who may read and write them, expiry.
- :mod:`.objects`: put, get, head, delete, copy and cursor listings of objects.
- :mod:`.multipart`: multipart uploads (parts as blobs, invisible until completed).
- :mod:`.presign`: presigned URLs that let someone without a token do one thing until they expire.
- :mod:`.jobs`: the purge job and the maintenance sweep (expired spaces, stale uploads).

The catalog is the index (``objects`` rows, ordered by key in byte order); the bytes are
immutable blobs under ``spaces/<space id>/``. Replacing an object writes a new blob and swaps
the row in one transaction, so readers see the old or the new version, never a mix, and a
failed upload changes nothing.
"""
