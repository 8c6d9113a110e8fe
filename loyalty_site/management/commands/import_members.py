from pathlib import Path

import tablib
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from loyalty_site.member_import import MemberImportResource, import_actor


def dataset_load(path: Path) -> tablib.Dataset:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return tablib.Dataset().load(path.read_bytes(), format="xlsx")
    if suffix == ".csv":
        return tablib.Dataset().load(path.read_text(encoding="utf-8-sig"), format="csv")
    raise CommandError(f"{path.name}: only .csv and .xlsx files can be imported")


def result_errors(result) -> list[str]:
    """One line per failing row: its number and why."""
    lines = []
    for number, errors in result.row_errors():
        for error in errors:
            lines.append(f"row {number}: {error.error}")
    for invalid in result.invalid_rows:
        for field, messages in invalid.error_dict.items():
            lines.append(f"row {invalid.number}: {field}: {'; '.join(map(str, messages))}")
    return sorted(lines, key=lambda line: int(line.split()[1].rstrip(":")))


class Command(BaseCommand):
    help = (
        "Import legacy members with cards and opening balances from a CSV or XLSX file. "
        "All or nothing; importing the same file again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; write nothing."
        )
        parser.add_argument(
            "--actor",
            help="Staff user name recorded as the importer (default: the inactive 'import' user).",
        )

    def handle(self, *args, file: Path, dry_run: bool, actor: str | None, **options):
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        dataset = dataset_load(file)
        if actor:
            try:
                user = get_user_model().objects.get(username=actor)
            except get_user_model().DoesNotExist:
                raise CommandError(f"no staff user {actor!r}") from None
        else:
            user = import_actor()
        with tqdm(total=len(dataset), desc="members", unit="row") as bar:
            resource = MemberImportResource(
                actor=user, source=file.name, progress=lambda: bar.update(1)
            )
            result = resource.import_data(
                dataset,
                dry_run=dry_run,
                use_transactions=True,
                rollback_on_validation_errors=True,
            )
        errors = result_errors(result)
        if errors:
            for line in errors:
                self.stderr.write(line)
            raise CommandError(f"{len(errors)} error(s): nothing was imported")
        totals = result.totals
        summary = ", ".join(f"{kind}: {totals.get(kind, 0)}" for kind in ("new", "update", "skip"))
        prefix = "dry run, nothing written — would import" if dry_run else "imported"
        self.stdout.write(f"{prefix} {len(dataset)} rows ({summary})")
        if resource.erased_rows:
            self.stdout.write(
                f"{resource.erased_rows} row(s) of erased members left out (counted as skipped)"
            )
