"""Set-based write helpers: one statement however many rows.

On PostgreSQL each is one `UPDATE … FROM unnest(…)` / `INSERT … SELECT FROM unnest(…)`: the per-row values
travel as a few array parameters, so the statement text and its parse cost do not grow with the rows.
Elsewhere (SQLite, the embedded default) they fall back to ORM statements with the same effect.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db import connection, models
from django.db.models import Case, F, Value, When


def _array_type(field: models.Field) -> str:
    return field.db_type(connection).split("(")[0]


class AnyOf(models.Lookup):
    """`filter(order_id__any_of=ids)`: like `__in`, but on PostgreSQL `= ANY(%s)` with the values as one array
    parameter, so a filter on 100,000 ids costs no more to build, send and parse than one on 10."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [self.lhs.output_field.get_db_prep_value(v, connection) for v in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::{_array_type(self.lhs.output_field)}[])", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


models.Field.register_lookup(AnyOf)
models.ForeignObject.register_lookup(AnyOf)  # foreign keys keep a lookup registry of their own


class RowColumns:
    """One model's columns in a row of a hand-written statement: where they start, and their database converters.

    `select()` lists them (table alias `alias`); `instance(db, row)` makes the model instance from its slice of a row,
    converted as the ORM would convert it (e.g. SQLite's datetimes), without the ORM's per-query compilation."""

    def __init__(self, model: type[models.Model], alias: str, start: int) -> None:
        self.model, self.alias, self.start = model, alias, start
        self.fields = model._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self.converters = []  # (position, column, converters) for the fields whose raw values need converting
        for i, field in enumerate(self.fields):
            column = field.get_col(alias)
            converters = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]
            if converters:
                self.converters.append((i, column, converters))

    def select(self) -> str:
        return ", ".join(f"{self.alias}.{connection.ops.quote_name(field.column)}" for field in self.fields)

    def instance(self, db: str, row: tuple) -> models.Model:
        values = list(row[self.start : self.start + len(self.fields)])
        for i, column, converters in self.converters:
            for converter in converters:
                values[i] = converter(values[i], column, connection)
        return self.model.from_db(db, self.names, values)


@dataclass(frozen=True)
class Read:
    """One SELECT, built but not run: see reads_in_one_trip."""

    sql: str
    params: Sequence[object]


def reads_in_one_trip(*reads: Read) -> list[list[tuple]]:
    """PostgreSQL only: run SELECTs in order in one round trip, and return each one's rows.

    Each runs with a snapshot of its own (READ COMMITTED takes one per statement), so a read after a locking read
    sees everything committed by those it waited for, as it would in a round trip of its own. For a caller that
    holds a contended lock: one trip instead of several while others wait."""
    with connection.cursor() as cursor:
        cursor.execute("; ".join(r.sql for r in reads), [p for r in reads for p in r.params])
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
    return results


@dataclass(frozen=True)
class Statement:
    """One set-based write, built but not run: run it alone (run) or with others in one statement (run_together).

    `returning`: a column of the written rows to hand to `then` as a list once the write ran on PostgreSQL (e.g. the
    new ids of an INSERT, to enqueue them after commit); the fallback does its own follow-up."""

    sql: str
    params: list[object]
    fallback: Callable[[], int]  # the same write through the ORM (databases other than PostgreSQL)
    returning: str | None = None
    then: Callable[[list], None] | None = None

    def run(self) -> int:
        if connection.vendor != "postgresql":
            return self.fallback()
        with connection.cursor() as cursor:
            if self.returning is None:
                cursor.execute(self.sql, self.params)
                return cursor.rowcount
            cursor.execute(f'{self.sql} RETURNING "{self.returning}"', self.params)
            values = [row[0] for row in cursor.fetchall()]
        if self.then is not None:
            self.then(values)
        return len(values)


def run_together(*statements: "Statement | None") -> None:
    """Run several writes as one statement on PostgreSQL (each a data-modifying CTE: one round trip, one plan),
    one after the other elsewhere (in the order given). They must not write the same rows (a statement sees one
    snapshot: none sees another's changes)."""
    statements = [s for s in statements if s is not None]
    if connection.vendor != "postgresql" or len(statements) < 2:
        for statement in statements:
            statement.run()
        return
    ctes = ", ".join(f"w{i} AS ({s.sql} RETURNING {_returned(s)})" for i, s in enumerate(statements))
    results = ", ".join(
        f"(SELECT count(*) FROM w{i})" if s.returning is None else f"(SELECT array_agg(r) FROM w{i})"
        for i, s in enumerate(statements)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT {results}", [p for s in statements for p in s.params])
        row = cursor.fetchone()
    for statement, result in zip(statements, row, strict=True):
        if statement.returning is not None and statement.then is not None:
            statement.then(list(result or []))


def _returned(statement: Statement) -> str:
    return "1" if statement.returning is None else f'"{statement.returning}" AS r'


def _int_array(values: Iterable[int]) -> str:
    """An array of integers as PostgreSQL's array literal ('{1,2,3}', cast by the statement): the driver then sends
    one string instead of adapting every element (about three times faster for the arrays a fill sends)."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def bulk_insert_statement(model: type[models.Model], objs: Sequence[models.Model]) -> Statement | None:
    """INSERT of new rows (auto primary keys) from unsaved instances, one array parameter per column, not run
    (None when there is nothing to write). Sends no signals and sets no pks, like a plain bulk INSERT."""
    if not objs:
        return None
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in fields)
    params: list[object] = [[f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs] for f in fields]
    sql = f'INSERT INTO "{meta.db_table}" ({columns}) SELECT * FROM unnest({arrays})'
    return Statement(sql, params, lambda: len(model._default_manager.bulk_create(objs)))


def bulk_add(
    model: type[models.Model],
    deltas: Mapping[int, Mapping[str, int]],
    *,
    exhausted: tuple[str, Mapping[str, object]] | None = None,
) -> int:
    """Add signed deltas to integer columns of many rows in one UPDATE: {pk: {field: delta}}.

    Counters change relative to their current value (never read-modify-write in Python). `exhausted`
    = (field, {other_field: value}): rows whose `field` reaches 0 by this change also get those values
    (e.g. a backorder's status and closed_at once nothing waits), in the same statement on PostgreSQL.
    """
    statement = bulk_add_statement(model, deltas, exhausted=exhausted)
    return statement.run() if statement is not None else 0


def bulk_add_statement(
    model: type[models.Model],
    deltas: Mapping[int, Mapping[str, int]],
    *,
    exhausted: tuple[str, Mapping[str, object]] | None = None,
) -> Statement | None:
    """bulk_add's statement, not run (None when there is nothing to write)."""
    if not deltas:
        return None
    fields = sorted({field for row in deltas.values() for field in row})
    pks = sorted(deltas)
    table = model._meta.db_table
    pk_col = model._meta.pk.column
    columns = {f: model._meta.get_field(f).column for f in fields}
    assignments = [f'"{columns[f]}" = t."{columns[f]}" + v."d_{i}"' for i, f in enumerate(fields)]
    closing_params: list[object] = []  # the SET clause's values come before the FROM clause's arrays
    if exhausted is not None and connection.vendor == "postgresql":
        counter, closing = exhausted
        reaches_zero = f't."{columns[counter]}" + v."d_{fields.index(counter)}" = 0'
        for name, value in closing.items():
            field = model._meta.get_field(name)
            assignments.append(
                f'"{field.column}" = CASE WHEN {reaches_zero} THEN %s::{_array_type(field)} ELSE t."{field.column}" END'
            )
            closing_params.append(field.get_db_prep_value(value, connection))
    arrays = ", ".join(["%s::bigint[]"] + ["%s::integer[]"] * len(fields))
    names = ", ".join(["pk"] + [f"d_{i}" for i in range(len(fields))])
    array_params: list[object] = [_int_array(pks)] + [_int_array(deltas[pk].get(f, 0) for pk in pks) for f in fields]
    sql = (
        f'UPDATE "{table}" AS t SET {", ".join(assignments)} '
        f'FROM unnest({arrays}) AS v({names}) WHERE t."{pk_col}" = v.pk'
    )
    return Statement(sql, closing_params + array_params, lambda: _bulk_add_orm(model, deltas, exhausted))


def _bulk_add_orm(
    model: type[models.Model],
    deltas: Mapping[int, Mapping[str, int]],
    exhausted: tuple[str, Mapping[str, object]] | None,
) -> int:
    fields = sorted({field for row in deltas.values() for field in row})
    pks = sorted(deltas)
    updates: dict[str, object] = {
        f: F(f) + Case(*[When(pk=pk, then=Value(deltas[pk].get(f, 0))) for pk in pks], default=Value(0)) for f in fields
    }
    if exhausted is not None:
        # In the same UPDATE (a check constraint may tie the counter to the closing values): a row reaches 0
        # exactly when its current value is minus its delta.
        counter, closing = exhausted
        reaching = [When(pk=pk, **{counter: -deltas[pk][counter]}) for pk in pks if deltas[pk].get(counter)]
        for name, value in closing.items():
            updates[name] = Case(
                *[When(condition.condition, then=Value(value)) for condition in reaching], default=F(name)
            )
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
        arrays = ", ".join(["%s::bigint[]"] + [f"%s::{_array_type(meta_fields[f])}[]" for f in fields])
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


def bulk_upsert_add_statement(
    model: type[models.Model], *, keys: Sequence[str], counter: str, rows: Mapping[tuple[int, ...], int]
) -> Statement | None:
    """Insert rows {(key values): amount}, or add `amount` to `counter` of the row that has those keys; not run
    (None when there is nothing to write).

    `keys` name the fields of a unique constraint (e.g. an allocation's line and stock level). One
    INSERT … ON CONFLICT DO UPDATE on PostgreSQL: nothing is read first.
    """
    if not rows:
        return None
    ordered = sorted(rows)
    key_fields = [model._meta.get_field(k) for k in keys]
    counter_field = model._meta.get_field(counter)
    table = model._meta.db_table
    columns = [f.column for f in key_fields] + [counter_field.column]
    quoted = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in [*key_fields, counter_field])
    conflict = ", ".join(f'"{f.column}"' for f in key_fields)
    sql = (
        f'INSERT INTO "{table}" ({quoted}) SELECT * FROM unnest({arrays}) '
        f'ON CONFLICT ({conflict}) DO UPDATE SET "{counter_field.column}" = '
        f'"{table}"."{counter_field.column}" + EXCLUDED."{counter_field.column}"'
    )
    params: list[object] = [_int_array(key[i] for key in ordered) for i in range(len(keys))]
    params.append(_int_array(rows[key] for key in ordered))
    return Statement(sql, params, lambda: _bulk_upsert_add_orm(model, key_fields, counter, ordered, rows))


def _bulk_upsert_add_orm(
    model: type[models.Model],
    key_fields: Sequence[models.Field],
    counter: str,
    ordered: Sequence[tuple[int, ...]],
    rows: Mapping[tuple[int, ...], int],
) -> int:
    lookup = {f"{field.attname}__in": {key[i] for key in ordered} for i, field in enumerate(key_fields)}
    existing = {
        tuple(row[:-1]): row[-1]
        for row in model._default_manager.filter(**lookup).values_list(*[f.attname for f in key_fields], counter)
    }
    model._default_manager.bulk_create(
        [
            model(
                **{f.attname: key[i] for i, f in enumerate(key_fields)}, **{counter: existing.get(key, 0) + rows[key]}
            )
            for key in ordered
        ],
        update_conflicts=True,
        unique_fields=[f.name for f in key_fields],
        update_fields=[counter],
    )
    return len(ordered)


def insert_unless_conflict(instance: models.Model, *, conflict_fields: Sequence[str]) -> bool:
    """INSERT the instance; False (and nothing written) when a row with the same `conflict_fields` exists.

    On PostgreSQL one `INSERT … ON CONFLICT (…) DO NOTHING RETURNING pk`: no savepoint, and the transaction
    stays usable after a conflict. Elsewhere a savepoint around save(). Other integrity errors raise.
    Sets the pk on success. Sends no model signals (the models it is used for have no receivers).
    """
    model = type(instance)
    meta = model._meta
    if connection.vendor != "postgresql":
        from django.db import IntegrityError, transaction

        lookup = {
            meta.get_field(name).attname: getattr(instance, meta.get_field(name).attname) for name in conflict_fields
        }
        try:
            with transaction.atomic():
                instance.save(force_insert=True)
        except IntegrityError:
            if model._default_manager.filter(**lookup).exists():
                return False
            raise
        return True
    fields = [f for f in meta.concrete_fields if not (f.primary_key and getattr(instance, f.attname) is None)]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    conflict = ", ".join(f'"{meta.get_field(name).column}"' for name in conflict_fields)
    sql = (
        f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({", ".join(["%s"] * len(fields))}) '
        f'ON CONFLICT ({conflict}) DO NOTHING RETURNING "{meta.pk.column}"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return True
