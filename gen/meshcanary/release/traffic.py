"""The weights a traffic change gives a release's versions, and how to say what it did.

The planners compute a release's next weights from the typed model and refuse, with a message
for the person who asked, a request that makes no sense.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshcanary.release.edit import check_version_name, check_weight
from meshcanary.release.model import Release
from meshcanary.release.splice import EditRefused


def weights(release: Release) -> dict[str, int]:
    """The release's weights, version → percent, in the file's order."""
    return {v.name: v.weight for v in release.versions}


def _checked(planned: dict[str, int]) -> dict[str, int]:
    for name, weight in planned.items():
        check_weight(name, weight)
    total = sum(planned.values())
    if total != 100:
        parts = " + ".join(f"{name} {weight}" for name, weight in planned.items())
        raise EditRefused(f"weights would sum to {total}, not 100 ({parts})")
    return planned


def _two_versions(release: Release, doing: str) -> None:
    if len(release.versions) < 2:
        raise EditRefused(
            f"{release.service} has one version ({release.stable.name}), so there is no canary "
            f"to {doing}; start one first"
        )


def _no_steps(release: Release) -> EditRefused:
    return EditRefused(
        f"{release.service} has no canary steps; set canary.steps in {release.path} "
        f"or defaults.canary.steps in {release.environment.path}, or give a weight"
    )


def plan_step(release: Release, to: int | None = None, next_step: bool = False) -> dict[str, int]:
    """The canary (last version) to `to` percent, or to the next step of the plan.

    The stable version (the first) takes what the canary leaves; versions between them keep
    their weights.
    """
    if to is None and not next_step:
        raise EditRefused("give the canary's new weight, or ask for the next step")
    if to is not None and next_step:
        raise EditRefused("give the canary's new weight or ask for the next step, not both")
    _two_versions(release, "step")
    stable, canary = release.stable, release.canary
    if next_step:
        if not release.steps:
            raise _no_steps(release)
        later = [step for step in release.steps if step > canary.weight]
        if not later:
            plan = ", ".join(map(str, release.steps))
            if canary.weight == 100:
                # Promoting now would change nothing: what is left is taking the old ones away.
                raise EditRefused(
                    f"{canary.name} already receives all the traffic, the last step of the plan "
                    f"({plan}); the rollout is done: {_retire_advice(release)}"
                )
            raise EditRefused(
                f"{canary.name} is at {canary.weight}%, at or past the last step of the plan "
                f"({plan}); promote it, or give a weight"
            )
        to = later[0]
    target = check_weight(canary.name, to)
    if target == canary.weight:
        raise EditRefused(f"{canary.name} is already at {target}%")
    middle = release.versions[1:-1]
    kept = sum(v.weight for v in middle)
    left = 100 - target - kept
    if left < 0:
        holders = [v.name for v in middle if v.weight]
        verb = "takes" if len(holders) == 1 else "take"
        # A step to 100% is what promote does, and promote also takes the middle versions' share.
        instead = f"promote {canary.name}, or " if target == 100 else ""
        raise EditRefused(
            f"{canary.name} at {target}% would leave {100 - target}% for the other versions, "
            f"but {' and '.join(holders)} already {verb} {kept}%; {instead}lower "
            f"{'it' if len(holders) == 1 else 'them'} first, or give {canary.name} at most "
            f"{100 - kept}%"
        )
    planned = weights(release)
    planned[canary.name] = target
    planned[stable.name] = left
    return _checked(planned)


def plan_promote(release: Release) -> dict[str, int]:
    """All traffic to the canary (the last version)."""
    _two_versions(release, "promote")
    canary = release.canary
    if canary.weight == 100:
        raise EditRefused(
            f"{canary.name} already receives all the traffic, so there is nothing to promote; "
            f"{_retire_advice(release)}"
        )
    return _checked({v.name: 100 if v is canary else 0 for v in release.versions})


def _retire_advice(release: Release) -> str:
    """What to run once the canary has all the traffic: retire each version left without any."""
    idle = [v.name for v in release.versions[:-1] if v.weight == 0]
    if not idle:
        return "nothing is left to do"
    where = f"{release.environment.name} {release.service}"
    commands = " and ".join(f"`meshcanary retire {where} {name}`" for name in idle)
    return f"retire the old version{'s' if len(idle) > 1 else ''} with {commands}"


def plan_rollback(release: Release) -> dict[str, int]:
    """The canary's traffic back to the stable version (the first)."""
    _two_versions(release, "roll back")
    stable, canary = release.stable, release.canary
    if canary.weight == 0:
        raise EditRefused(
            f"{canary.name} already receives no traffic; there is nothing to roll back"
        )
    planned = weights(release)
    planned[stable.name] += canary.weight
    planned[canary.name] = 0
    return _checked(planned)


def plan_set(release: Release, requested: Mapping[str, int]) -> dict[str, int]:
    """The given versions' weights; the others keep theirs. The result must sum to 100."""
    if not requested:
        raise EditRefused("name at least one version and its weight, such as v2=50")
    planned = weights(release)
    unknown = [name for name in requested if name not in planned]
    if unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        raise EditRefused(
            f"unknown version{'s' if len(unknown) > 1 else ''} {listed} "
            f"(the release has {', '.join(planned)})"
        )
    for name, weight in requested.items():
        planned[name] = check_weight(name, weight)
    _checked(planned)
    if planned == weights(release):
        now = ", ".join(f"{name} {weight}" for name, weight in planned.items())
        raise EditRefused(f"nothing to change: the weights already are {now}")
    return planned


def plan_start(release: Release, version: str, first_step: bool) -> dict[str, int]:
    """Weights once `version` joins as the new canary: 0, or the plan's first step.

    The first step's traffic comes from the stable version (the first).
    """
    check_version_name(version)
    if release.version(version) is not None:
        raise EditRefused(f'version "{version}" already exists in {release.path}')
    planned = weights(release)
    if not first_step:
        planned[version] = 0
        return _checked(planned)
    if not release.steps:
        raise _no_steps(release)
    first, stable = release.steps[0], release.stable
    if stable.weight < first:
        raise EditRefused(
            f"the first step gives {version} {first}% from {stable.name}, "
            f"which has only {stable.weight}%"
        )
    planned[stable.name] -= first
    planned[version] = first
    return _checked(planned)


@dataclass(frozen=True)
class WeightChange:
    """Weights before and after one change, for commit messages and PR titles.

    `images`: the image of each version the change adds (`start`), which the release read
    before the change cannot say.
    """

    before: dict[str, int]
    after: dict[str, int]
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, release: Release, after: Mapping[str, int]) -> WeightChange:
        return cls(weights(release), dict(after))

    def moved(self) -> list[tuple[str, int, int]]:
        """(version, before, after) of each version whose weight changed; absent counts as 0."""
        names = [*self.after, *(name for name in self.before if name not in self.after)]
        changes = [(name, self.before.get(name, 0), self.after.get(name, 0)) for name in names]
        return [change for change in changes if change[1] != change[2]]

    def describe(self) -> str:
        """What the change did, in one line, for the commit message and the command's output.

        `v2 30% -> 50%`: a move of the canary (the last version) against the stable (the
        first) names only the canary. With versions between them, it also says where the rest
        of the traffic is: `v3 10% -> 25%; v1 (stable) keeps the rest, 80% -> 65%; v2 stays at
        10%`. A version added or removed says so: `start v3 at 0% (image …)`, `retire v1`.
        """
        parts = [self._started(name) for name in self.after if name not in self.before]
        parts += [f"retire {name}" for name in self.before if name not in self.after]
        kept = [name for name in self.after if name in self.before]
        moves = [
            (n, self.before[n], self.after[n]) for n in kept if self.before[n] != self.after[n]
        ]
        if not moves:
            return "; ".join(parts) or "weights unchanged"
        stable, canary = kept[0], kept[-1]
        moved = {name for name, _, _ in moves}
        if parts and moved == {stable}:
            # The new version's share comes from the stable version (start --first-step).
            return "; ".join([*parts, self._rest(stable)])
        if parts or len(kept) < 2 or canary not in moved or not moved <= {stable, canary}:
            return "; ".join([*parts, ", ".join(f"{n} {b}% -> {a}%" for n, b, a in moves)])
        step = f"{canary} {self.before[canary]}% -> {self.after[canary]}%"
        if len(kept) == 2:
            return step
        rest = [self._rest(stable)] if stable in moved else []
        stays = ", ".join(f"{name} stays at {self.after[name]}%" for name in kept[1:-1])
        return "; ".join([step, *rest, stays])

    def _started(self, name: str) -> str:
        image = self.images.get(name)
        return f"start {name} at {self.after[name]}%" + (f" (image {image})" if image else "")

    def _rest(self, stable: str) -> str:
        return f"{stable} (stable) keeps the rest, {self.before[stable]}% -> {self.after[stable]}%"
