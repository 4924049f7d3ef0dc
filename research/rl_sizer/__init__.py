"""RL position-sizing pilot: environment, agents, runner, online PPO sizer."""
