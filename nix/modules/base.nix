# The `assertions` and `warnings` options every evaluation checks, as in NixOS.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.anything;
      default = [ ];
      description = "{ assertion = bool; message = string; } entries; a false assertion fails the evaluation with its message.";
    };
    warnings = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Messages printed when the evaluation succeeds.";
    };
  };
}
