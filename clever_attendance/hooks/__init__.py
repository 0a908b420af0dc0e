"""The hooks of the two services: CleverHook and SafetyShieldHook."""
