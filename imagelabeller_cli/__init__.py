"""`imagelabeller`: label local image files in process, or use a running ImageLabeller API.

- `imagelabeller label PATH... [--json] [--top-k N] [--batch-size N] [--progress]`
- `imagelabeller submit URL|PATH [--api URL] [--wait] [--timeout SECONDS] [--json]`
- `imagelabeller get ID [--api URL] [--json]`
"""
