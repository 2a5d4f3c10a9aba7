// The import job's page, with JavaScript: asks the console for the job's progress every
// second and updates the figures ("Imported 120 of 400", the progress bar); when the job has
// finished, loads the page again, which then lists what was imported or says why nothing
// was. Without JavaScript the page's "Check progress" button does the same by hand.
const job = document.getElementById('import-job')
if (job) {
  const status = document.getElementById('import-status')
  const bar = document.getElementById('import-bar')
  const manual = [document.getElementById('check-progress'), document.getElementById('check-progress-hint')]
  for (const element of manual) element?.classList.add('govuk-!-display-none')
  const showManual = () => { for (const element of manual) element?.classList.remove('govuk-!-display-none') }
  let failures = 0
  const poll = async () => {
    try {
      const response = await fetch(job.dataset.progressUrl, {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store'
      })
      if (!response.ok) throw new Error(String(response.status))
      const progress = await response.json()
      failures = 0
      if (progress.finished) {
        window.location.assign(job.dataset.pageUrl)
        return
      }
      if (status.textContent !== progress.message) status.textContent = progress.message
      bar.max = Math.max(progress.rows_total, 1)
      bar.value = progress.rows_done
      bar.textContent = progress.message
    } catch {
      failures += 1
      if (failures >= 5) { // the console or the platform is not answering: leave it to the user
        showManual()
        return
      }
    }
    window.setTimeout(poll, 1000)
  }
  window.setTimeout(poll, 1000)
}
