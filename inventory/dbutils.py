"""Set-based write helpers: one statement however many rows."""

from collections.abc import Mapping

from django.db import connection, models
from django.db.models import Case, F, Value, When


def bulk_add(model: type[models.Model], deltas: Mapping[int, Mapping[str, int]]) -> int:
    """Add signed deltas to integer columns of many rows in one UPDATE: {pk: {field: delta}}.

    Counters change relative to their current value (never read-modify-write in Python). On PostgreSQL
    it is `UPDATE ... FROM unnest(...)`; elsewhere one UPDATE with CASE per field.
    """
    if not deltas:
        return 0
    fields = sorted({field for row in deltas.values() for field in row})
    pks = sorted(deltas)
    if connection.vendor == "postgresql":
        table = model._meta.db_table
        pk_col = model._meta.pk.column
        columns = {f: model._meta.get_field(f).column for f in fields}
        assignments = ", ".join(f'"{columns[f]}" = t."{columns[f]}" + v."d_{i}"' for i, f in enumerate(fields))
        arrays = ", ".join(["%s::bigint[]"] + ["%s::integer[]"] * len(fields))
        names = ", ".join(["pk"] + [f"d_{i}" for i in range(len(fields))])
        params: list[object] = [pks] + [[deltas[pk].get(f, 0) for pk in pks] for f in fields]
        sql = f'UPDATE "{table}" AS t SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE t."{pk_col}" = v.pk'
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    updates = {
        f: F(f) + Case(*[When(pk=pk, then=Value(deltas[pk].get(f, 0))) for pk in pks], default=Value(0)) for f in fields
    }
    return model._default_manager.filter(pk__in=pks).update(**updates)


def bulk_set(model: type[models.Model], values: Mapping[int, Mapping[str, object]]) -> int:
    """Set columns of many rows to per-row values in one UPDATE: {pk: {field: value}} (same fields per row)."""
    if not values:
        return 0
    pks = sorted(values)
    fields = sorted(next(iter(values.values())))
    if connection.vendor == "postgresql":
        table = model._meta.db_table
        pk_col = model._meta.pk.column
        meta_fields = {f: model._meta.get_field(f) for f in fields}
        assignments = ", ".join(f'"{meta_fields[f].column}" = v."c_{i}"' for i, f in enumerate(fields))
        arrays = ", ".join(
            ["%s::bigint[]"] + [f"%s::{meta_fields[f].db_type(connection).split('(')[0]}[]" for f in fields]
        )
        names = ", ".join(["pk"] + [f"c_{i}" for i in range(len(fields))])
        params: list[object] = [pks] + [
            [meta_fields[f].get_db_prep_value(values[pk][f], connection) for pk in pks] for f in fields
        ]
        sql = f'UPDATE "{table}" AS t SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE t."{pk_col}" = v.pk'
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    updates = {
        f: Case(
            *[When(pk=pk, then=Value(values[pk][f], output_field=model._meta.get_field(f))) for pk in pks],
            output_field=model._meta.get_field(f),
        )
        for f in fields
    }
    return model._default_manager.filter(pk__in=pks).update(**updates)
