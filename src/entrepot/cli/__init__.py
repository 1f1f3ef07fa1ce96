"""The ``entrepot`` command line."""

from __future__ import annotations

import typer

from entrepot.cli import admin, carto, data, exports, s3keys, server, spaces, sql
from entrepot.cli.options import Commands

app = typer.Typer(
    help="entrepot: self-hosted tables, object spaces, SQL and exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=Commands,  # the one error exit of every command
)
app.command()(server.serve)
app.command()(server.worker)
app.command()(server.migrate)
app.command("config")(server.show_config)
app.add_typer(admin.projects, name="projects")
app.add_typer(admin.tokens, name="tokens")
app.add_typer(data.buckets, name="buckets")
app.add_typer(data.tables, name="tables")
app.add_typer(spaces.spaces, name="spaces")
app.add_typer(sql.sql, name="sql")
app.command("export")(exports.export)
app.add_typer(exports.exports, name="exports")
app.add_typer(exports.templates, name="export-templates")
app.add_typer(s3keys.s3_keys, name="s3-keys")
app.command("import")(carto.import_)
app.add_typer(carto.datasets, name="datasets")
app.add_typer(carto.api_keys, name="api-keys")
app.add_typer(carto.maps, name="maps")
app.command("ls")(spaces.ls)
app.command("cp")(spaces.cp)
app.command("rm")(spaces.rm)
app.command("presign")(spaces.presign)


def main() -> None:
    app()
