"""The promo code use cases, wired (the promo part of the composition root, shared/bootstrap.py).
Built on first use, once per process."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.dal.promo_codes import PromoCodeDAL, PromoUseDAL
    from shared.services.promo.codes import PromoCodes
    from shared.services.promo.uses import PromoUses
    from shared.services.slots import SlotPicker


class PromoServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def code_store(self) -> PromoCodeDAL:
        from shared.dal.promo_codes import PromoCodeDAL

        return PromoCodeDAL(self.root.firestore)

    @cached_property
    def use_slots(self) -> PromoUseDAL:
        from shared.dal.promo_codes import PromoUseDAL

        return PromoUseDAL(self.root.firestore)

    @cached_property
    def picker(self) -> SlotPicker:
        from shared.services.slots import SlotPicker

        return SlotPicker(self.use_slots)

    @cached_property
    def uses(self) -> PromoUses:
        from shared.services.promo.uses import PromoUses

        return PromoUses(self.code_store, self.use_slots, self.picker)

    @cached_property
    def codes(self) -> PromoCodes:
        from shared.services.capacity import CapacityChanger
        from shared.services.promo.codes import PromoCodes

        resizer = CapacityChanger(self.use_slots, self.picker)
        return PromoCodes(self.code_store, self.root.event_store, self.uses, resizer, self.root.new_uow)
