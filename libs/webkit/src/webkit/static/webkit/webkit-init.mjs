// Starts GOV.UK Frontend's components (progressive enhancement: every page works without it).
import { initAll } from './govuk-frontend.min.js'
initAll()
