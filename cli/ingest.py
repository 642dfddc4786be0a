"""``orderguard ingest``: exported order files into the order log (the kernel's ingest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, progress_bar, settings_of, user_errors, wide_console
from orderguard.errors import CLI_EXIT_CODE, NotFoundError

app = command_group()


@app.command()
@user_errors
def ingest(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Export files: .jsonl, .csv or .xlsx.")],
    channel: Annotated[str | None, typer.Option(
        help="Channel of the payloads (tmall, jd, douyin, kuaishou, wechat, site). "
             "Default: the file name, e.g. jd.jsonl.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping export columns to payload fields.")] = None,
    all_or_nothing: Annotated[bool, typer.Option(
        "--all-or-nothing", help="Store nothing from a file that has any bad row.")] = False,
    rejects: Annotated[Path | None, typer.Option(
        help="Write every refused row (line, field, reason) to this JSONL file.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per database transaction.")] = 1000,
    jobs: Annotated[int, typer.Option(
        min=1, max=64, help="Worker processes sharing each file's batches (a backfill: one per core). "
                            "--all-or-nothing imports with one.")] = 1,
) -> None:
    """Import exported order files into the order log, idempotently.

    Bad rows are reported with their line number and reason; good rows are kept (unless
    --all-or-nothing). Exits 2 when any row was refused.
    """
    from orderguard.heap import settled_heap  # keeps `orderguard --help` fast
    from orderguard.ingest.files import count_records
    from orderguard.ingest.importer import channel_for, import_file
    from orderguard.ingest.parallel import import_files
    from orderguard.ingest.state_memo import IMPORT_CAPACITY

    settings = settings_of(ctx)
    missing = [str(path) for path in files if not path.is_file()]
    if missing:  # checked before anything is stored, so a typo in the last name does not half-import the list
        raise NotFoundError(f"`files` must be existing files; no such file: {', '.join(missing)}", field="files")
    for path in files:
        channel_for(path, channel)  # a file without a channel is refused before any other is stored
    console = wide_console(stderr=True)
    table = Table("file", "channel", "rows", "inserted", "duplicates", "conflicts", "refused")
    refused_total = stored_total = 0
    with open_log(settings, create=True, remembered_states=IMPORT_CAPACITY) as log, progress_bar(console) as progress, \
            settled_heap():
        if jobs > 1 and not all_or_nothing:
            tasks = [progress.add_task(path.name, total=count_records(path)) for path in files]
            results = import_files(files, url=settings.database_url, pii=settings.pii, limits=settings.ingest,
                                   jobs=jobs, channel=channel, mapping=mapping, batch_size=batch_size,
                                   on_part=lambda i, rows: progress.advance(tasks[i], rows))
        else:
            results = [import_file(path, channel=channel, mapping=mapping, log=log, pii=settings.pii,
                                   limits=settings.ingest, all_or_nothing=all_or_nothing, batch_size=batch_size,
                                   progress=progress) for path in files]
        for path, result in zip(files, results, strict=True):
            table.add_row(path.name, result.channel, str(result.rows), str(result.report.inserted),
                          str(result.report.duplicates), str(result.report.conflicts),
                          str(len(result.report.errors)))
            refused_total += len(result.report.errors)
            stored_total += result.report.inserted + result.report.duplicates
            for error in result.report.errors[:20]:
                console.print(f"{path.name}:{error.position}: {error.error.one_line()}", markup=False,
                              highlight=False)
            if len(result.report.errors) > 20:
                console.print(f"{path.name}: … and {len(result.report.errors) - 20} more refused rows")
            if rejects is not None:
                result.write_rejects(rejects)
    wide_console().print(table)
    if refused_total:
        if not stored_total:
            kept = "nothing was stored"
        elif all_or_nothing:
            kept = "nothing stored from files with bad rows"
        else:
            kept = "the good rows were stored"
        console.print(f"error[invalid_input]: {refused_total} row(s) refused; {kept}", markup=False)
        raise typer.Exit(CLI_EXIT_CODE)


@app.command("stored-key")
@user_errors
def stored_key_command(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="phone, device, ip or address.")],
    value: Annotated[str, typer.Argument(help="The clear value; an address as province|city|district|detail.")],
) -> None:
    """Print the stored (keyed-hash) form of a phone, device id, IP or address, as allow and deny lists name it.

    The order log keeps these only hashed with ORDERGUARD_PII__HASH_KEY, so a list naming a
    clear value would never match: put this command's output in the rule pack instead.
    """
    from orderguard.ingest.normalize import PiiHasher
    from orderguard.ingest.protect import stored_key

    settings = settings_of(ctx)
    typer.echo(stored_key(kind, value, PiiHasher(settings.pii.hash_key.get_secret_value().encode())))


@app.command("sign-push")
@user_errors
def sign_push_command(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="tmall, jd, douyin, kuaishou, wechat or site.")],
    payload: Annotated[Path, typer.Argument(help="The payload file, sent byte for byte as the body.", exists=True,
                                            dir_okay=False, readable=True)],
    url: Annotated[str, typer.Option(help="The service's address.")] = "http://127.0.0.1:8000",
) -> None:
    """Print a curl command that pushes PAYLOAD to the service as CHANNEL's platform would: signed with the
    channel's webhook secret (ORDERGUARD_WEBHOOKS__SECRETS__<CHANNEL>) at the current time.

    For checking a deployment's webhook set-up end to end; the signature holds for the
    tolerance window (ORDERGUARD_WEBHOOKS__TOLERANCE) and only once (a second send is a replay).
    """
    import shlex
    from urllib.parse import urlencode

    from orderguard.clock import SystemClock
    from orderguard.errors import ConfigError
    from orderguard.ingest.channels import get_adapter
    from orderguard.ingest.webhooks import signed_request

    settings = settings_of(ctx)
    name = get_adapter(channel).channel.value
    secret = settings.webhooks.secrets.get(name)
    if secret is None:
        raise ConfigError(f"no webhook secret is configured for channel {name} "
                          f"(set ORDERGUARD_WEBHOOKS__SECRETS__{name.upper()})", field="channel")
    headers, params = signed_request(name, secret.get_secret_value(), payload.read_bytes(), SystemClock().now(),
                                     app_key=settings.webhooks.app_keys.get(name))
    target = f"{url.rstrip('/')}/v1/orders/{name}" + (f"?{urlencode(params)}" if params else "")
    parts = ["curl", "-X", "POST", shlex.quote(target), "-H", shlex.quote("content-type: application/json")]
    for header, value in headers.items():
        parts += ["-H", shlex.quote(f"{header}: {value}")]
    parts += ["--data-binary", shlex.quote(f"@{payload}")]
    typer.echo(" ".join(parts))
