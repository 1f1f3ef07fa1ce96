"""Administration straight on the catalog: projects and tokens (scriptable; --quiet prints only the token)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from entrepot.cli.options import (
    AsJson,
    CatalogUrl,
    Col,
    ConfigFile,
    DataDir,
    Wide,
    out,
    print_json,
    print_table,
    settings_from,
)
from entrepot.core import auth
from entrepot.core.organizations import create_organization
from entrepot.core.projects import create_project, get_project, list_projects
from entrepot.core.services import Services

projects = typer.Typer(help="Manage projects (tenants).", no_args_is_help=True)
tokens = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def _open(data_dir: Path | None, config: Path | None, catalog_url: str | None) -> Services:
    return Services.open(settings_from(config, data_dir=data_dir, catalog_url=catalog_url))


@projects.command("create")
def projects_create(
    name: str,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the master token.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the project's id and name and the master token as JSON.")
    ] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """Create a project and print its master token (shown only once)."""
    services = _open(data_dir, config, catalog_url)
    try:
        created = create_project(services.catalog, name, description)
    finally:
        services.close()
    if as_json:
        print_json({"id": created.project.id, "name": created.project.name, "token": created.master.token})
    elif quiet:
        print(created.master.token)
    else:
        out.print(f"project {created.project.name} (id {created.project.id}); master token, shown once:")
        print(created.master.token)


@projects.command("organization")
def projects_organization(
    name: str,
    admin: Annotated[str, typer.Option(help="The project that administers it (CARTO's org admin).")],
    email: Annotated[str, typer.Option(help="The admin user's e-mail.")] = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """Create a CARTO organization administered by a project (see docs/carto.md, Users)."""
    services = _open(data_dir, config, catalog_url)
    try:
        create_organization(services.catalog, name, admin, email)
    finally:
        services.close()
    out.print(f"organization {name}, administered by project {admin}")


@projects.command("list")
def projects_list(
    as_json: AsJson = False,
    wide: Wide = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """List projects."""
    services = _open(data_dir, config, catalog_url)
    try:
        rows = list_projects(services.catalog)
    finally:
        services.close()
    data = [{"id": p.id, "name": p.name, "created": p.created_at.isoformat()} for p in rows]
    if as_json:
        print_json(data)
        return
    print_table(
        data, [Col("id", "id", "number"), Col("name", "name"), Col("created", "created", "time")], wide=wide
    )


@tokens.command("create")
def tokens_create(
    project: Annotated[str, typer.Option(help="Project name or id.")],
    master: Annotated[bool, typer.Option("--master", help="All permissions.")] = False,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    bucket_permission: Annotated[
        list[str] | None, typer.Option(help="BUCKET=read|write, repeatable (e.g. in.c-main=read).")
    ] = None,
    space_permission: Annotated[list[str] | None, typer.Option(help="SPACE=read|write, repeatable.")] = None,
    manage_buckets: Annotated[bool, typer.Option("--manage-buckets", help="canManageBuckets.")] = False,
    manage_tokens: Annotated[bool, typer.Option("--manage-tokens", help="canManageTokens.")] = False,
    read_all_files: Annotated[bool, typer.Option("--read-all-files", help="canReadAllFileUploads.")] = False,
    manage_spaces: Annotated[bool, typer.Option("--manage-spaces", help="Create and delete spaces.")] = False,
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            help="The user the token acts for: all tokens of one owner share exports and templates."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the token.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the token's id, project and secret as JSON.")
    ] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """Create a token and print it (shown only once)."""
    services = _open(data_dir, config, catalog_url)
    try:
        proj = get_project(services.catalog, project)
        spec = auth.TokenSpec(
            description=description,
            is_master=master,
            can_manage_buckets=manage_buckets,
            can_manage_tokens=manage_tokens,
            can_read_all_file_uploads=read_all_files,
            can_manage_spaces=manage_spaces,
            bucket_permissions=auth.parse_permission_pairs(bucket_permission or [], "bucket"),
            space_permissions=auth.parse_permission_pairs(space_permission or [], "space"),
            expires_in=expires_in,
            owner=owner,
        )
        issued = auth.create_token(services.catalog, proj.id, spec)
    finally:
        services.close()
    if as_json:
        print_json({"id": issued.row.id, "project": proj.name, "token": issued.token})
        return
    if not quiet:
        out.print(f"token {issued.row.id} in project {proj.name}; shown only once:")
    print(issued.token)


@tokens.command("list")
def tokens_list(
    project: Annotated[str, typer.Option(help="Project name or id.")],
    as_json: AsJson = False,
    wide: Wide = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """List a project's active tokens (never their secrets)."""
    services = _open(data_dir, config, catalog_url)
    try:
        proj = get_project(services.catalog, project)
        rows = auth.list_tokens(services.catalog, proj.id)
    finally:
        services.close()
    data = [
        {
            "id": r.id,
            "description": r.description,
            "master": r.is_master,
            "bucketPermissions": r.bucket_permissions,
            "spacePermissions": r.space_permissions,
            "expires": r.expires_at.isoformat() if r.expires_at else None,
            "lastUsed": r.last_used_at.isoformat() if r.last_used_at else None,
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    columns = [
        Col("id", "id", "number"),
        Col("description", "description", "long"),
        Col("buckets", lambda d: "all (master)" if d["master"] else d["bucketPermissions"]),
        Col("spaces", lambda d: "all (master)" if d["master"] else d["spacePermissions"]),
        Col("expires", "expires", "time"),
        Col("last used", "lastUsed", "time"),
    ]
    print_table(data, columns, wide=wide)


@tokens.command("revoke")
def tokens_revoke(
    token_id: int,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
) -> None:
    """Revoke a token by id; it stops working at once."""
    services = _open(data_dir, config, catalog_url)
    try:
        auth.revoke_token(services.catalog, token_id)
    finally:
        services.close()
    out.print(f"token {token_id} revoked")
