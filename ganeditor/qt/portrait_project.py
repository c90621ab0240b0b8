"""The portrait panel's part of a project file (``pipelines.project.PortraitState``): what it keeps
(generator, aligned face, fitted latent with any generator tuning, slider values, fitting method) and
how it comes back — the face at once, the latent once its generator has loaded (asked for by name)."""

from __future__ import annotations

import numpy as np

from ganeditor.pipelines.project import PortraitState
from ganeditor.qt.jobs import Job


class PortraitProject:
    """Mixin of ``PortraitPanel``: save and restore its work through ``PortraitState``."""

    def project_state(self) -> PortraitState | None:
        """The portrait work to keep in a project file (None when there is none)."""
        aligned = self.target.aligned if self.target is not None else self.face.face
        if aligned is None and self.latent is None:
            return None
        g = self.generator
        gen = {"name": g.name if g else "", "path": str(g.path) if g else "",
               "fingerprint": self.info.fingerprint if self.info else ""}  # fmt: skip
        inv = {"method": self.method_box.currentData(), "steps": self.steps_box.value()}
        latent = self.latent if self.inverted else None
        return PortraitState(gen, aligned, dict(self.edits.active()), inv, latent)

    def restore(self, state: PortraitState) -> str:
        """Bring back saved portrait work (after the photo was set); returns a problem to tell, or ''."""
        if state.aligned is not None:
            self.face.restore(state.aligned, self.doc.current)
        self.base = self.doc.current
        if state.inversion.get("method"):
            self.method_box.setCurrentIndex(max(0, self.method_box.findData(state.inversion["method"])))
            self.steps_box.setValue(int(state.inversion.get("steps", self.steps_box.value())))
        self._pending = state if state.latent is not None else None
        problem = ""
        same = self._pending is not None and self.info is not None and self.info.fingerprint == state.latent.fingerprint
        if self._pending is not None and not same:
            name = state.generator.get("name") or state.generator.get("path", "?")
            wanted = next((e for e in self.catalog_entries
                           if e.name == name or str(e.path) == state.generator.get("path")), None)  # fmt: skip
            if wanted is None:
                self._pending = None
                problem = f"the project's generator '{name}' is not in the model library: its fit was not restored"
            else:
                self.wants_generator.emit(wanted)  # restored once it has loaded
        elif same:
            self._restore_latent()
        self._update_state()
        return problem

    def _restore_latent(self) -> None:
        """The pending project's latent (and generator tuning) back into the session, then its sliders."""
        state, self._pending = self._pending, None
        if state is None or state.latent is None:
            return
        latent, sliders, face = state.latent, state.sliders, state.aligned

        def done(recon: np.ndarray) -> None:
            self.reconstruction, self.latent = recon, latent
            self.recon_thumb.set_image(recon, "Fitted face")
            self.invert_hint.setText("The fit was restored from the project.")
            self.edits.set_all({**{k: 0.0 for k in self.edits.values}, **sliders})
            self._fitted(face)

        self.lane.submit(Job(lambda task: self.session.restore_latent(latent), key="portrait-invert",
                             label="Restoring the fit", on_result=done,
                             on_error=lambda e: self.error.emit("Project", f"the fit was not restored: {e}")))  # fmt: skip

