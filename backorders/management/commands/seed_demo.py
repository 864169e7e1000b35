"""A believable demo shop, built through the services so every invariant holds and every ledger adds up.

Three warehouses, three suppliers, 50 outdoor and kitchen products in every availability state,
customers of each tier, 60 orders over the last 40 days (many partly backordered, some ship-complete),
a few shipped and cancelled, purchase orders (received, partly received, open and draft) so waiting
lines carry ETAs pegged to purchase orders or lead time, and an admin login. Deterministic for a
given --seed; running it again changes nothing and prints the login.

How the states are reached: the orders are planned first, then each product's stock is chosen from
its planned demand. Every stock increase fills the queue, so at the end a backorderable product has
available = max(0, stock - net demand) and waiting = max(0, net demand - stock) (net = not cancelled).
"""

import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from backorders.invariants import invariant_violations
from backorders.models import Backorder
from backorders.roles import CUSTOMER_SERVICE, INVENTORY_MANAGER, WAREHOUSE
from backorders.selectors import Availability, availability_for
from backorders.services import CustomerRequest, LineRequest, order_cancel, order_place, stock_adjust_and_fill
from backorders.services.purchasing import PurchaseLineRequest, purchase_order_create, purchase_order_receive
from backorders.services.shipping import order_ship_and_notify as order_ship
from inventory.models import Product, PurchaseOrder, StockLevel, Supplier, Warehouse
from inventory.selectors import products_with_stock
from orders.models import Customer, SalesOrder
from orders.services import order_ship_blockers

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "backorders-demo"  # a demo on 127.0.0.1; the command refuses production settings
# One staff user per role (backorders/roles.py), to try the back office as each team sees it.
ROLE_USERS = [
    # username, password, role (group), first name, what they do here
    ("warehouse", "warehouse-demo", WAREHOUSE, "Wes", "receive purchase orders, count stock, allocate, ship"),
    ("service", "service-demo", CUSTOMER_SERVICE, "Sam", "backorders, ETAs, customer emails, cancellations"),
    ("manager", "manager-demo", INVENTORY_MANAGER, "Mia", "everything, including the backorder policy and suppliers"),
]
ADMIN_URL = "http://127.0.0.1:8000/admin/"
ORDER_PREFIX = "DEMO-"
ORDER_COUNT = 60
DAYS_OF_HISTORY = 40
OPENING_REASON = "Opening stock count"
SOURCE = "seed_demo"

WAREHOUSES = [
    ("MAIN", "Columbus, OH — main distribution center", 1),
    ("EAST", "Newark, NJ — east coast overflow", 2),
    ("WEST", "Reno, NV — west coast fulfillment", 3),
]

SUPPLIERS = [
    ("Cascade Gear Co.", "orders@cascadegear.example", 14),
    ("Northwind Outdoor Supply", "purchasing@northwind-outdoor.example", 28),
    ("Harbor Kitchenware Ltd.", "sales@harborkitchen.example", 10),
]

# Planned states. The storefront availability each one ends in is in EXPECTED below.
IN_STOCK = "in_stock"
IN_STOCK_NO_BACKORDERS = "in_stock_no_backorders"  # sells while stock lasts, never backordered
LOW_STOCK = "low_stock"
QUEUE = "queue"  # short: some orders wait in the product's queue
PREORDER = "preorder"  # nothing in stock yet, every order waits
AWAITING_STOCK = "awaiting_stock"  # orderable, no stock, nobody waiting yet
NO_BACKORDERS_EMPTY = "no_backorders_empty"  # backorders denied and no stock: out of stock
DISCONTINUED_SOLD_OUT = "discontinued_sold_out"  # the last units sold: out of stock for good
DISCONTINUED_GONE = "discontinued_gone"  # never stocked again
DISCONTINUED_LAST_UNITS = "discontinued_last_units"  # a few left, no restock

EXPECTED = {
    IN_STOCK: Availability.IN_STOCK,
    IN_STOCK_NO_BACKORDERS: Availability.IN_STOCK,
    LOW_STOCK: Availability.LOW_STOCK,
    QUEUE: Availability.BACKORDER,
    PREORDER: Availability.BACKORDER,
    AWAITING_STOCK: Availability.BACKORDER,
    NO_BACKORDERS_EMPTY: Availability.OUT_OF_STOCK,
    DISCONTINUED_SOLD_OUT: Availability.OUT_OF_STOCK,
    DISCONTINUED_GONE: Availability.OUT_OF_STOCK,
    DISCONTINUED_LAST_UNITS: Availability.LOW_STOCK,
}
ORDERABLE_WEIGHTS = {
    IN_STOCK: 2,
    IN_STOCK_NO_BACKORDERS: 1,
    LOW_STOCK: 2,
    QUEUE: 5,
    PREORDER: 3,
    DISCONTINUED_SOLD_OUT: 1,
    DISCONTINUED_LAST_UNITS: 1,
}
BACKORDERABLE = (IN_STOCK, LOW_STOCK, QUEUE, PREORDER)
# Minimum planned units (of orders not cancelled), so each state has a story (a queue needs demand beyond the stock).
MIN_DEMAND = {QUEUE: 7, PREORDER: 2, LOW_STOCK: 1, DISCONTINUED_SOLD_OUT: 2, DISCONTINUED_LAST_UNITS: 1}


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    state: str
    supplier: int | None  # index into SUPPLIERS
    lead_time_days: int | None = None  # None: the supplier's lead time applies
    reorder_point: int = 10
    safety_stock: int = 4

    @property
    def backorders_allowed(self) -> bool:
        return self.state not in (IN_STOCK_NO_BACKORDERS, NO_BACKORDERS_EMPTY)

    @property
    def discontinued(self) -> bool:
        return self.state.startswith("discontinued")


CATALOG: list[DemoProduct] = [
    # In stock
    DemoProduct("MUG-CER-12", "Ceramic Camp Mug, 12 oz", IN_STOCK, 2, reorder_point=20, safety_stock=8),
    DemoProduct("MUG-ENM-12", "Enamel Camp Mug, 12 oz", IN_STOCK, 2),
    DemoProduct("BTL-STL-750", "Insulated Steel Bottle, 750 ml", IN_STOCK, 0, reorder_point=15),
    DemoProduct("KNF-FLD-3", "Folding Pocket Knife, 3 in blade", IN_STOCK, 0),
    DemoProduct("LMP-HD-300", "Rechargeable Headlamp, 300 lm", IN_STOCK, 0, lead_time_days=12),
    DemoProduct("SCK-MER-M", "Merino Hiking Socks, size M", IN_STOCK, 1, reorder_point=24),
    DemoProduct("SCK-MER-L", "Merino Hiking Socks, size L", IN_STOCK, 1, reorder_point=24),
    DemoProduct("BNE-WOL-01", "Ribbed Wool Beanie", IN_STOCK, 1),
    DemoProduct("GLV-FLC-M", "Fleece Gloves, size M", IN_STOCK, 1),
    DemoProduct("CUP-TI-450", "Titanium Cup, 450 ml", IN_STOCK, 2),
    DemoProduct("SPK-TI-01", "Titanium Spork", IN_STOCK, 2, reorder_point=30),
    DemoProduct("TWL-MCR-L", "Microfibre Travel Towel, large", IN_STOCK, 0),
    DemoProduct("BAG-DRY-10", "Roll-Top Dry Bag, 10 L", IN_STOCK, 0),
    DemoProduct("BAG-DRY-20", "Roll-Top Dry Bag, 20 L", IN_STOCK, 0),
    DemoProduct("CRB-CLM-4", "Screw-Gate Carabiners, pack of 4", IN_STOCK, 1),
    DemoProduct("CRD-PAR-30", "Paracord, 30 m", IN_STOCK, 1),
    DemoProduct("CMP-BSE-01", "Baseplate Compass", IN_STOCK, 0),
    DemoProduct("FIR-STK-01", "Ferro Rod Fire Starter", IN_STOCK, 0),
    DemoProduct("PAN-NON-20", "Non-stick Camp Pan, 20 cm", IN_STOCK, 2),
    DemoProduct("WTR-FLT-01", "Squeeze Water Filter", IN_STOCK, 0, lead_time_days=21),
    DemoProduct("SNK-TRL-12", "Trail Snack Bars, box of 12", IN_STOCK, 2, lead_time_days=5),
    DemoProduct("SUN-SPF-50", "Mineral Sunscreen SPF 50, 100 ml", IN_STOCK, 2, lead_time_days=7),
    DemoProduct("GAS-CAN-230", "Butane-Propane Gas Canister, 230 g", IN_STOCK_NO_BACKORDERS, 1),
    DemoProduct("CHR-FLD-01", "Folding Camp Chair", IN_STOCK_NO_BACKORDERS, 1),
    # Low stock
    DemoProduct("TNT-2P-UL", "Ultralight Tent, 2-person", LOW_STOCK, 1, reorder_point=6, safety_stock=2),
    DemoProduct("PAD-SLP-R", "Insulated Sleeping Pad, regular", LOW_STOCK, 0, reorder_point=8),
    DemoProduct("STV-CAN-01", "Canister Stove with Piezo", LOW_STOCK, 0, reorder_point=8),
    DemoProduct("JKT-RN-M", "Packable Rain Jacket, men's M", LOW_STOCK, 1, reorder_point=6),
    DemoProduct("JKT-RN-W", "Packable Rain Jacket, women's S", LOW_STOCK, 1, reorder_point=6),
    DemoProduct("PLE-TRK-2", "Carbon Trekking Poles, pair", LOW_STOCK, 0, reorder_point=6),
    DemoProduct("HMK-SGL-01", "Single Hammock with Straps", LOW_STOCK, 0, reorder_point=5),
    # Backordered, with a waiting queue
    DemoProduct("BAG-SLP-3S", "Down Sleeping Bag, 3-season", QUEUE, 1, lead_time_days=35),
    DemoProduct("PCK-45-L", "Trail Backpack, 45 L", QUEUE, 0),
    DemoProduct("PCK-30-D", "Daypack, 30 L", QUEUE, 0),
    DemoProduct("BTS-HK-42", "Waterproof Hiking Boots, EU 42", QUEUE, 1),
    DemoProduct("BTS-HK-44", "Waterproof Hiking Boots, EU 44", QUEUE, 1),
    DemoProduct("LNT-USB-01", "Collapsible USB Lantern", QUEUE, 0, lead_time_days=18),
    DemoProduct("FLT-GRV-6", "Gravity Water Filter, 6 L", QUEUE, 0),
    DemoProduct("CFE-PRS-01", "Camp Coffee Press, 1 L", QUEUE, 2),
    DemoProduct("SOL-PNL-21", "Foldable Solar Panel, 21 W", QUEUE, 1, lead_time_days=42),
    DemoProduct("PLB-GPS-01", "Personal Locator Beacon", QUEUE, 1),
    # Backordered before the first unit arrived
    DemoProduct("TNT-4P-DOM", "Family Dome Tent, 4-person", PREORDER, 1),
    DemoProduct("PCK-65-EXP", "Expedition Backpack, 65 L", PREORDER, 0, lead_time_days=30),
    DemoProduct("KAY-INF-2", "Inflatable Kayak, 2-person", PREORDER, None),  # no lead time known: no ETA
    DemoProduct("STV-WOD-01", "Wood-burning Camp Stove", AWAITING_STOCK, 0),
    # Out of stock: backorders denied
    DemoProduct("GAS-CAN-450", "Butane-Propane Gas Canister, 450 g", NO_BACKORDERS_EMPTY, 1),
    DemoProduct("MTC-WTP-10", "Waterproof Matches, pack of 10", NO_BACKORDERS_EMPTY, 1),
    # Discontinued
    DemoProduct("JKT-DWN-23", "Down Jacket, 2023 edition", DISCONTINUED_SOLD_OUT, 1),
    DemoProduct("BTL-PLS-1L", "Plastic Water Bottle, 1 L", DISCONTINUED_GONE, 2),
    DemoProduct("LMP-HD-150", "Headlamp, 150 lm (previous model)", DISCONTINUED_LAST_UNITS, 0, reorder_point=5),
]

CUSTOMER_NAMES = [
    "Ava Thompson",
    "Liam Carter",
    "Sofia Martinez",
    "Noah Bennett",
    "Maya Patel",
    "Ethan Brooks",
    "Chloe Nguyen",
    "Lucas Rivera",
    "Emma Schultz",
    "Oliver Hughes",
    "Zoe Kim",
    "James O'Connor",
    "Isabella Rossi",
    "Henry Walsh",
    "Amara Okafor",
    "Leo Fischer",
    "Grace Li",
    "Samuel Adeyemi",
    "Nora Lindqvist",
    "Daniel Cohen",
    "Hannah Weber",
    "Mateo García",
    "Priya Sharma",
    "Jack Morrison",
]
SPECS = {spec.sku: spec for spec in CATALOG}
TIERS = [Customer.Tier.VIP] * 4 + [Customer.Tier.LOYAL] * 6 + [Customer.Tier.STANDARD] * 14


@dataclass
class PlannedOrder:
    number: str
    customer: CustomerRequest
    placed_at: datetime
    lines: dict[str, int] = field(default_factory=dict)
    ship_complete: bool = False
    cancel: bool = False


def _email(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(part for part in ascii_name.lower().replace("'", "").split()) + "@example.com"


class Command(BaseCommand):
    help = (
        "Seed a believable demo shop through the services (warehouses, ~50 products in every availability "
        "state, customers of each tier, orders with partial backorders, purchase orders) and an admin login. "
        "Running it again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=20241122, help="Random seed (the demo is reproducible).")

    def handle(self, *args, **options) -> None:
        if settings.SETTINGS_MODULE.endswith(".production"):
            raise CommandError("seed_demo creates an admin with a published password; it does not run in production.")
        admin_created = self._ensure_admin()
        roles_created = self._ensure_role_users()
        if self._already_seeded():
            self.stdout.write("The demo shop is already seeded; nothing was changed.")
        elif Product.objects.exists() or SalesOrder.objects.exists():
            self.stdout.write(
                self.style.WARNING(
                    "The database already holds products or orders that are not the demo's; seed_demo only fills "
                    "an empty shop, so nothing was changed."
                )
            )
        else:
            rng = random.Random(options["seed"])
            self.stdout.write(f"Seeding the demo shop (random seed {options['seed']})…")
            with transaction.atomic():
                self._seed(rng)
        self._print_summary()
        self._print_login(admin_created, roles_created)

    # Login

    def _ensure_admin(self) -> bool:
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            return False
        User.objects.create_superuser(ADMIN_USERNAME, "admin@demo-outfitters.example", ADMIN_PASSWORD)
        return True

    def _ensure_role_users(self) -> set[str]:
        """A staff user per role, in the role's group; existing users (and their passwords) are left alone."""
        User = get_user_model()
        created = set()
        for username, password, role, first_name, _work in ROLE_USERS:
            if User.objects.filter(username=username).exists():
                continue
            user = User.objects.create_user(
                username,
                f"{username}@demo-outfitters.example",
                password,
                first_name=first_name,
                is_staff=True,
            )
            user.groups.add(Group.objects.get(name=role))
            created.add(username)
        return created

    def _print_login(self, created: bool, roles_created: set[str] = frozenset()) -> None:
        self.stdout.write("")
        self.stdout.write(f"Back office: {ADMIN_URL} (or /admin/ on the HOST and PORT given to make demo)")
        if created:
            self.stdout.write(self.style.SUCCESS(f"Log in as {ADMIN_USERNAME} / {ADMIN_PASSWORD} (created now)."))
        else:
            self.stdout.write(
                f"Log in as {ADMIN_USERNAME} (the user already existed; its password was left as it was — "
                f"seed_demo creates it with {ADMIN_PASSWORD!r})."
            )
        self.stdout.write("Or as one of the team, to see the back office as each role does:")
        for username, password, role, _first_name, work in ROLE_USERS:
            note = "" if username in roles_created else " (already existed: password left as it was)"
            self.stdout.write(f"  {username + ' / ' + password:<28} {role}: {work}{note}")

    # Seeding

    def _already_seeded(self) -> bool:
        return (
            Warehouse.objects.filter(code__in=[code for code, _, _ in WAREHOUSES]).exists()
            or Product.objects.filter(sku__in=[p.sku for p in CATALOG]).exists()
            or SalesOrder.objects.filter(number__startswith=ORDER_PREFIX).exists()
        )

    def _seed(self, rng: random.Random) -> None:
        user = get_user_model().objects.get(username=ADMIN_USERNAME)
        warehouses = [Warehouse.objects.create(code=c, name=n, priority=p) for c, n, p in WAREHOUSES]
        self.stdout.write("  warehouses: " + ", ".join(f"{w.code} (priority {w.priority})" for w in warehouses))
        suppliers = [Supplier.objects.create(name=n, email=e, lead_time_days=d) for n, e, d in SUPPLIERS]
        products = {
            spec.sku: Product.objects.create(
                sku=spec.sku,
                name=spec.name,
                backorders_allowed=spec.backorders_allowed,
                discontinued=spec.discontinued,
                lead_time_days=spec.lead_time_days,
                supplier=suppliers[spec.supplier] if spec.supplier is not None else None,
                reorder_point=spec.reorder_point,
                safety_stock=spec.safety_stock,
            )
            for spec in CATALOG
        }
        self.stdout.write(f"  {len(suppliers)} suppliers, {len(products)} products")

        orders = self._plan_orders(rng)
        stock, later_receipts = self._plan_stock(rng, orders)
        opening = {sku: units - later_receipts.get(sku, 0) for sku, units in stock.items()}
        units = self._count_opening_stock(rng, products, warehouses, opening, user)
        self.stdout.write(f"  opening stock counted: {units} units ({OPENING_REASON!r} in the ledger)")
        received_po = purchase_order_create(
            warehouse=warehouses[0],
            expected_date=timezone.localdate() - timedelta(days=2),
            lines=[PurchaseLineRequest(sku, units) for sku, units in sorted(later_receipts.items())],
            supplier=suppliers[1],
            number="PO-DEMO-1001",
            acting_user=user,
        )

        placed = self._place_orders(orders)
        self.stdout.write(f"  {len(placed)} orders placed over the last {DAYS_OF_HISTORY} days")

        result = purchase_order_receive(purchase_order=received_po, acting_user=user)
        self.stdout.write(f"  supplier delivery: {result.summary()}")
        self._open_purchase_orders(rng, warehouses, suppliers, user)
        self._cancel(orders, placed)
        self._write_off_damage(products, warehouses, user)
        shipped = self._ship(placed)
        self.stdout.write(f"  {shipped} orders shipped")
        self._check(products)

    def _plan_orders(self, rng: random.Random) -> list[PlannedOrder]:
        customers = [
            CustomerRequest(email=_email(name), name=name, tier=tier)
            for name, tier in zip(CUSTOMER_NAMES, rng.sample(TIERS, len(TIERS)), strict=True)
        ]
        now = timezone.now().replace(second=0, microsecond=0)
        placed_times = sorted(
            now - timedelta(minutes=rng.randint(30, DAYS_OF_HISTORY * 24 * 60)) for _ in range(ORDER_COUNT)
        )
        pool = [spec for spec in CATALOG if spec.state in ORDERABLE_WEIGHTS]
        weights = [ORDERABLE_WEIGHTS[spec.state] for spec in pool]
        orders = []
        for i, placed_at in enumerate(placed_times):
            customer = customers[i] if i < len(customers) else rng.choice(customers)
            order = PlannedOrder(f"{ORDER_PREFIX}{1001 + i}", customer, placed_at, ship_complete=rng.random() < 0.15)
            for _ in range(rng.choices([1, 2, 3, 4], weights=[40, 35, 18, 7])[0]):
                spec = rng.choices(pool, weights=weights)[0]
                if spec.sku not in order.lines:
                    order.lines[spec.sku] = rng.choices([1, 2, 3, 4, 5], weights=[55, 25, 10, 6, 4])[0]
            orders.append(order)
        # A few customers will cancel whole orders: only orders whose products can all be backordered, so the
        # demand they hold for a while never makes another order refused.
        candidates = [o for o in orders[10:-10] if all(SPECS[sku].state in BACKORDERABLE for sku in o.lines)]
        for order in rng.sample(candidates, 3):
            order.cancel = True
        # Top up the demand that stays, so every state has a story (a queue needs more demand than stock).
        kept = [o for o in orders if not o.cancel]
        for spec in pool:
            minimum = MIN_DEMAND.get(spec.state, 0)
            while sum(o.lines.get(spec.sku, 0) for o in kept) < minimum:
                order = rng.choice([o for o in kept if spec.sku not in o.lines])
                order.lines[spec.sku] = rng.randint(1, 3)
        return orders

    def _plan_stock(self, rng: random.Random, orders: list[PlannedOrder]) -> tuple[dict[str, int], dict[str, int]]:
        """Units each product gets (opening count plus a later delivery), from its planned demand."""
        demand: Counter[str] = Counter()
        net: Counter[str] = Counter()
        for order in orders:
            for sku, quantity in order.lines.items():
                demand[sku] += quantity
                if not order.cancel:
                    net[sku] += quantity
        stock: dict[str, int] = {}
        for spec in CATALOG:
            threshold = max(spec.reorder_point, spec.safety_stock)
            if spec.state in (IN_STOCK, IN_STOCK_NO_BACKORDERS):
                stock[spec.sku] = demand[spec.sku] + threshold + rng.randint(8, 60)
            elif spec.state in (LOW_STOCK, DISCONTINUED_LAST_UNITS):
                stock[spec.sku] = net[spec.sku] + rng.randint(1, threshold)
            elif spec.state == QUEUE:
                stock[spec.sku] = net[spec.sku] - rng.randint(3, min(12, net[spec.sku] - 2))
            elif spec.state == DISCONTINUED_SOLD_OUT:
                stock[spec.sku] = demand[spec.sku]
            else:
                stock[spec.sku] = 0
        # Two short products get part of their stock from a supplier delivery after the orders came in.
        later = {}
        for spec in [s for s in CATALOG if s.state == QUEUE and stock[s.sku] >= 4][:2]:
            later[spec.sku] = stock[spec.sku] // 2
        return stock, later

    def _count_opening_stock(self, rng, products, warehouses, stock, user) -> int:
        """Count the opening stock in, spread over the warehouses in a few typical patterns."""
        splits = [(1.0, 0.0, 0.0), (0.6, 0.3, 0.1), (0.5, 0.5, 0.0), (0.0, 0.7, 0.3)]
        total = 0
        for sku, units in stock.items():
            if units <= 0:
                continue
            shares = rng.choice(splits)
            parts = [int(units * share) for share in shares]
            parts[next(i for i, share in enumerate(shares) if share)] += units - sum(parts)
            for warehouse, part in zip(warehouses, parts, strict=True):
                if part > 0:
                    stock_adjust_and_fill(
                        product=products[sku],
                        warehouse=warehouse,
                        delta=part,
                        reason=OPENING_REASON,
                        acting_user=user,
                        source=SOURCE,
                    )
                    total += part
        return total

    def _place_orders(self, orders: list[PlannedOrder]) -> dict[str, SalesOrder]:
        placed = {}
        for i, order in enumerate(orders, start=1):
            placed[order.number] = order_place(
                customer=order.customer,
                lines=[LineRequest(sku=sku, quantity=quantity) for sku, quantity in order.lines.items()],
                ship_complete=order.ship_complete,
                number=order.number,
                placed_at=order.placed_at,
            )
            if i % 15 == 0:
                self.stdout.write(f"    {i}/{len(orders)} orders placed")
        return placed

    def _open_purchase_orders(self, rng, warehouses, suppliers, user) -> None:
        """Open POs for some short products, so their waiting lines peg to a PO; the rest use lead time."""
        waiting = dict(
            Backorder.objects.filter(status=Backorder.Status.WAITING)
            .values("product__sku")
            .annotate(units=Sum("quantity"))
            .values_list("product__sku", "units")
        )
        plans = [
            ("PO-DEMO-1002", suppliers[0], warehouses[0], 6, ["PCK-45-L", "PCK-30-D", "LNT-USB-01"], "ordered"),
            ("PO-DEMO-1003", suppliers[1], warehouses[1], 19, ["BTS-HK-42", "BTS-HK-44", "TNT-4P-DOM"], "ordered"),
            ("PO-DEMO-1004", suppliers[0], warehouses[0], 24, ["PCK-65-EXP", "FLT-GRV-6"], "ordered"),
            ("PO-DEMO-1005", suppliers[1], warehouses[0], 40, ["SOL-PNL-21"], "draft"),
        ]
        for number, supplier, warehouse, days, skus, status in plans:
            lines = [
                # Some cover the whole queue, some only its head (the rest of the queue pegs to lead time).
                PurchaseLineRequest(sku, max(1, waiting.get(sku, 0) + rng.choice([-3, -1, 2, 6, 12])))
                for sku in skus
            ]
            purchase_order_create(
                warehouse=warehouse,
                expected_date=timezone.localdate() + timedelta(days=days),
                lines=lines,
                supplier=supplier,
                number=number,
                status=status,
                acting_user=user,
            )
        self.stdout.write(f"  {len(plans)} purchase orders raised for short products (one still a draft)")

    def _cancel(self, orders: list[PlannedOrder], placed: dict[str, SalesOrder]) -> None:
        refilled = 0
        for order in orders:
            if order.cancel:
                refilled += order_cancel(order=placed[order.number]).refill.units
        # One customer takes one unit less of a waiting line (a queue product keeps at least 2 waiting).
        queue_skus = [s.sku for s in CATALOG if s.state == QUEUE]
        backorder = (
            Backorder.objects.filter(status=Backorder.Status.WAITING, product__sku__in=queue_skus, quantity__gte=2)
            .select_related("line__order", "product")
            .order_by("placed_at", "pk")
            .first()
        )
        if backorder is not None:
            order_cancel(order=backorder.line.order, lines=[LineRequest(backorder.product.sku, 1)])
        cancelled = sum(o.cancel for o in orders)
        self.stdout.write(
            f"  {cancelled} orders cancelled ({refilled} released units went to waiting lines), one line reduced"
        )

    def _write_off_damage(self, products, warehouses, user) -> None:
        level = (
            StockLevel.objects.filter(product__sku="BAG-DRY-20", warehouse=warehouses[0]).first()
            or StockLevel.objects.filter(product__sku="BAG-DRY-20").first()
        )
        if level is not None and level.available >= 2:
            stock_adjust_and_fill(
                product=products["BAG-DRY-20"],
                warehouse=level.warehouse,
                delta=-2,
                reason="Damaged in the warehouse, written off",
                acting_user=user,
                source=SOURCE,
            )

    def _ship(self, placed: dict[str, SalesOrder]) -> int:
        """Ship the oldest complete orders and two partly backordered ones (older than four days)."""
        shipped = partly = 0
        cutoff = timezone.now() - timedelta(days=4)
        for order in sorted(placed.values(), key=lambda o: o.placed_at):
            order.refresh_from_db(fields=["status"])
            if order.placed_at > cutoff or order_ship_blockers(order=order) is not None:
                continue
            if order.status == SalesOrder.Status.ALLOCATED and shipped < 8:
                order_ship(order=order)
                shipped += 1
            elif order.status == SalesOrder.Status.BACKORDERED and partly < 2:
                order_ship(order=order)
                partly += 1
        return shipped + partly

    def _check(self, products: dict[str, Product]) -> None:
        """The demo must show what it promises; a mistake here rolls the whole seed back."""
        problems = invariant_violations()
        states = {spec.sku: spec.state for spec in CATALOG}
        for product in products_with_stock(Product.objects.filter(sku__in=states)):
            shown = availability_for(product=product, available=product.total_available)
            if shown != EXPECTED[states[product.sku]]:
                problems.append(f"{product.sku}: planned {states[product.sku]}, shows {shown}")
        if problems:
            raise CommandError("The demo seed came out wrong; nothing was saved:\n" + "\n".join(problems))

    # Summary

    def _print_summary(self) -> None:
        availability: Counter[str] = Counter(
            availability_for(product=p, available=p.total_available) for p in products_with_stock()
        )
        statuses = dict(SalesOrder.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        waiting = Backorder.objects.filter(status=Backorder.Status.WAITING).aggregate(
            lines=Count("id"), units=Sum("quantity")
        )
        tiers = dict(Customer.objects.values_list("tier").annotate(n=Count("id")).values_list("tier", "n"))
        self.stdout.write("")
        self.stdout.write(
            f"Products: {sum(availability.values())} — "
            + ", ".join(f"{label.lower()} {availability.get(value, 0)}" for value, label in Availability.choices)
        )
        self.stdout.write(
            f"Customers: {sum(tiers.values())} — "
            + ", ".join(f"{label.lower()} {tiers.get(value, 0)}" for value, label in Customer.Tier.choices)
        )
        self.stdout.write(
            f"Orders: {sum(statuses.values())} — "
            + ", ".join(f"{label.lower()} {statuses.get(value, 0)}" for value, label in SalesOrder.Status.choices)
        )
        self.stdout.write(
            f"Waiting backorders: {waiting['lines']} lines, {waiting['units'] or 0} units; "
            f"open purchase orders: {PurchaseOrder.objects.filter(status__in=PurchaseOrder.OPEN_STATUSES).count()}"
        )
