"""servicekit: what every service needs and nobody should write twice."""
