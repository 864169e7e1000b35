from inventory.exceptions import Conflict


class DuplicateOrderNumber(Conflict):
    code = "duplicate_order_number"
