from inventory.exceptions import Conflict, DomainError


class DuplicateOrderNumber(Conflict):
    code = "duplicate_order_number"


class EtaPermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403
