from collections.abc import Iterable
from functools import cache

from django.db import connection
from django.db.models import Prefetch, QuerySet

from inventory.dbutils import RowColumns

from .models import OrderLine, SalesOrder


def order_with_lines(qs: QuerySet[SalesOrder] | None = None) -> QuerySet[SalesOrder]:
    qs = qs if qs is not None else SalesOrder.objects.all()
    return qs.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product", "backorder").order_by("id"))
    )


def order_with_lines_by_pk(pk: int) -> SalesOrder:
    """One order as order_with_lines() gives it (customer; lines in id order with product and backorder), in one
    statement: the API answers every order it places or cancels with this read.

    The statement is fixed (built once from the models' columns), so a call costs the database round trip and
    the model instances, not the ORM's SQL compilation of a five-table select_related (three times as much).
    Raises SalesOrder.DoesNotExist for an unknown pk, like .get().
    """
    sql, parts = _order_with_lines_statement()
    customer_field, _, line_product, line_backorder = _order_with_lines_relations()
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        rows = cursor.fetchall()
    if not rows:
        raise SalesOrder.DoesNotExist(f"No order with pk {pk}.")
    db = connection.alias
    order_part, customer_part, line_part, product_part, backorder_part = parts
    order = order_part.instance(db, rows[0])
    customer_field.set_cached_value(order, customer_part.instance(db, rows[0]))
    lines = []
    for row in rows:
        if row[line_part.start] is None:  # an order without lines: one row, the line columns NULL
            continue
        line = line_part.instance(db, row)
        line_product.set_cached_value(line, product_part.instance(db, row))
        backorder = backorder_part.instance(db, row) if row[backorder_part.start] is not None else None
        line_backorder.set_cached_value(line, backorder)
        if backorder is not None:
            line_backorder.field.set_cached_value(backorder, line)
        lines.append(line)
    return order_lines_attach(order=order, lines=lines)


def order_lines_attach(*, order: SalesOrder, lines: list[OrderLine]) -> SalesOrder:
    """Give `order` these lines as order_with_lines()'s prefetch would (each with its product, and its backorder or
    None, already set): what the API's order responses read."""
    _, line_order, _, _ = _order_with_lines_relations()
    for line in lines:
        line_order.set_cached_value(line, order)
    cached = order.lines.all()
    cached._result_cache, cached._prefetch_done = lines, True
    order._prefetched_objects_cache = {"lines": cached}
    return order


def order_with_lines_of(order: SalesOrder) -> SalesOrder:
    """`order` as order_with_lines() gives it: itself when its lines are attached already (a placement that wrote
    them in one statement attaches them: no read back), else read by order_with_lines_by_pk."""
    if "lines" in getattr(order, "_prefetched_objects_cache", {}):
        return order
    return order_with_lines_by_pk(order.pk)


@cache
def _order_with_lines_relations() -> tuple:
    """The relations order_with_lines() follows (looked up once the app registry is ready: `backorder` is the
    reverse one-to-one of backorders.Backorder.line, an app above this one)."""
    return (
        SalesOrder._meta.get_field("customer"),
        OrderLine._meta.get_field("order"),
        OrderLine._meta.get_field("product"),
        OrderLine._meta.get_field("backorder"),
    )


@cache
def _order_with_lines_statement() -> tuple[str, list[RowColumns]]:
    """SELECT every column of the order, its customer, lines, their products and backorders, lines in id order."""
    quote = connection.ops.quote_name
    customer, _, product, backorder = _order_with_lines_relations()
    joined = {
        "sales_order": SalesOrder,
        "customer": customer.related_model,
        "line": OrderLine,
        "product": product.related_model,
        "backorder": backorder.related_model,
    }
    parts, start = [], 0
    for alias, model in joined.items():
        parts.append(RowColumns(model, alias, start))
        start += len(model._meta.concrete_fields)
    table = {alias: f"{quote(model._meta.db_table)} {alias}" for alias, model in joined.items()}

    def column(alias: str, field_name: str) -> str:
        return f"{alias}.{quote(joined[alias]._meta.get_field(field_name).column)}"

    sql = (
        f"SELECT {', '.join(part.select() for part in parts)} FROM {table['sales_order']} "
        f"JOIN {table['customer']} ON {column('customer', 'id')} = {column('sales_order', 'customer')} "
        f"LEFT JOIN {table['line']} ON {column('line', 'order')} = {column('sales_order', 'id')} "
        f"LEFT JOIN {table['product']} ON {column('product', 'id')} = {column('line', 'product')} "
        f"LEFT JOIN {table['backorder']} ON backorder.{quote(backorder.field.column)} = {column('line', 'id')} "
        f"WHERE {column('sales_order', 'id')} = %s ORDER BY {column('line', 'id')}"
    )
    return sql, parts


def order_lines_lock(*, line_ids: Iterable[int]) -> list[OrderLine]:
    """Lock order lines in pk order (after their products' stock levels: the global lock order)."""
    return list(
        OrderLine.objects.filter(pk__in=sorted(set(line_ids)))
        .select_related("product")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
