"""Theory curves for the test lab (the protocol of lazylab.theory: f(x_values, **task_params))."""
