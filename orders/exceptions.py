from inventory.exceptions import Conflict, InvalidInput


class NothingToShip(Conflict):
    code = "nothing_to_ship"


class ShipCompleteHeld(Conflict):
    code = "ship_complete_held"


class CannotCancel(InvalidInput):
    code = "cannot_cancel"
