"""The desk: everything one mail's processing needs, built once from the config and injected."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import SystemClock
from ..config import Config
from ..outbound.notify import BounceSigner, Mailer


@dataclass
class Desk:
    config: Config
    clock: object
    renderer: object
    signer: object
    mailer: Mailer

    @property
    def data_dir(self):
        return self.config.service.data_dir


def build_desk(config: Config, clock=None, renderer=None) -> Desk:
    from ..desk.tokens import TokenSigner, load_or_create_secret

    config.service.data_dir.mkdir(parents=True, exist_ok=True)
    secret = load_or_create_secret(config.service.data_dir, config.service.secret)
    signer = TokenSigner(secret)
    if renderer is None:
        from ..outbound.render import Renderer
        renderer = Renderer(config.service.templates_dir)
    mailer = Mailer(config, renderer, signer, BounceSigner(secret, config.service.address))
    return Desk(config=config, clock=clock or SystemClock(), renderer=renderer, signer=signer, mailer=mailer)
