"""Run the Pulumi program without the Pulumi CLI: ``python -m embedded_engine up``.

The Pulumi CLI and engine cannot be installed everywhere (not on our CI machines),
so this module plays the engine's part for dynamic providers only. It runs
``__main__.py`` for a stack under ``pulumi.runtime.set_mocks``; the mock monitor
does what the engine would do with each registered resource:

- values reach the provider as through the engine's protobuf wire (every number a float);
- a new resource: ``check`` then ``create``; a known one: ``check`` with its old inputs,
  ``diff`` against the old outputs, then ``update``, a replace (delete-before-create only
  when asked, create-before-delete otherwise) or nothing;
- resources in state that the program no longer declares are deleted afterwards;
- ``preview`` calls only ``check``/``diff`` and writes nothing; ``up`` shows that plan and
  applies it once confirmed; ``refresh`` calls ``read`` so drift is recorded in state;
- protected resources are never deleted or replaced; an operation in flight is recorded
  as pending, so a crash is reported by the next run.

``down`` deletes everything in reverse creation order. The state file lives in the
stack's ``prov-state-dir``: no secret input, secret outputs sealed (``state_secrets``),
URNs as the engine builds them. pulumi-docker resources are applied on the real
Docker engine through docker-py (``components/providers/docker_engine.py``); other
resource types (Kubernetes...) need the real Pulumi CLI and are refused.

A tool on top of the Pulumi layer (``components/``), not part of it: ``cli`` parses the
command line, ``engine`` plans and applies, ``state`` keeps the state file, ``mocks``
(the only module importing the Pulumi SDK at load time) runs the program for the engine,
``stack`` reads the stack's project settings. Imports go one way: cli -> engine -> mocks
-> stack/errors; ``mocks`` sees the engine only through the ``EngineHooks`` protocol.
"""
