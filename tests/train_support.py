"""Test helpers for training runs."""


def collapse_generator_after(monkeypatch, images: int) -> None:
    """From ``images`` seen on, the StyleGAN2 recipe's G_ema maps every latent to the same w: a deliberately
    collapsed generator, reached through the real training loop."""
    from ganeditor.pipelines.train.stylegan2 import StyleGAN2Recipe

    orig = StyleGAN2Recipe._update_ema

    def update(self, batch):
        orig(self, batch)
        if self.images_seen >= images:
            last = [m for m in self.G_ema.mapping.modules() if hasattr(m, "weight")][-1]
            last.weight.zero_()

    monkeypatch.setattr(StyleGAN2Recipe, "_update_ema", update)
