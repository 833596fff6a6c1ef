"""Planning: costs, optimisers (CEM, MPPI, gradient), the task layer and surprise."""
