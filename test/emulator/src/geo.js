'use strict';
// Static geography and catalogue the seeded inventory is drawn from.
// NANP places are real rate centres with their LATA, a ZIP/postal code inside
// them and the coordinates of that code, so region/locality/postal/LATA/
// lat-long stay consistent with each other (and Near* searches make sense).
// Non-NANP numbers come from the ranges regulators reserve for fiction
// (Ofcom drama numbers, ACMA's 0491 570 / 02 5550 blocks), and NANP numbers
// include each area code's fictional 555-01XX block.

// type keys used inside the emulator -> how Twilio spells them elsewhere
const TYPES = {
  local: { path: 'Local', pricing: 'local', incoming: 'local' },
  mobile: { path: 'Mobile', pricing: 'mobile', incoming: 'mobile' },
  toll_free: { path: 'TollFree', pricing: 'toll free', incoming: 'tollfree' },
};
// Path segments Twilio defines for searches; the last four have no inventory here.
const SEARCH_PATHS = {
  Local: 'local', Mobile: 'mobile', TollFree: 'toll_free',
  National: 'national', Voip: 'voip', SharedCost: 'shared_cost', MachineToMachine: 'machine_to_machine',
};

// place = [rate_center, locality, postal_code, latitude, longitude, exchanges]
const US_AREA_CODES = {
  '212': { region: 'NY', lata: '132', places: [
    ['NWYRCYZN01', 'New York', '10001', 40.750634, -73.997176, ['201', '244', '279']],
    ['NWYRCYZN03', 'New York', '10016', 40.745221, -73.978294, ['252', '685']],
    ['NWYRCYZN05', 'New York', '10022', 40.758628, -73.967948, ['308', '355', '832']]] },
  '646': { region: 'NY', lata: '132', places: [
    ['NWYRCYZN02', 'New York', '10011', 40.740225, -74.000331, ['230', '336']],
    ['NWYRCYZN04', 'New York', '10025', 40.798601, -73.966622, ['437', '596']]] },
  '213': { region: 'CA', lata: '730', places: [
    ['LSAN DA 01', 'Los Angeles', '90012', 34.061430, -118.238470, ['225', '437']],
    ['LSAN DA 04', 'Los Angeles', '90017', 34.052950, -118.264230, ['344', '622']]] },
  '310': { region: 'CA', lata: '730', places: [
    ['SNMN', 'Santa Monica', '90401', 34.015720, -118.493350, ['393', '451']],
    ['BVHL', 'Beverly Hills', '90210', 34.090100, -118.406500, ['274', '550']],
    ['TORRANCE', 'Torrance', '90503', 33.839730, -118.354050, ['316', '540']]] },
  '312': { region: 'IL', lata: '358', places: [
    ['CHCGOZN1', 'Chicago', '60601', 41.885790, -87.622440, ['236', '553', '726']],
    ['CHCGOZN2', 'Chicago', '60606', 41.882430, -87.637700, ['207', '454']]] },
  '415': { region: 'CA', lata: '722', places: [
    ['SNFC CNTRL', 'San Francisco', '94103', 37.772537, -122.414725, ['252', '503', '626']],
    ['SNFC CNTRL', 'San Francisco', '94107', 37.762147, -122.397099, ['543', '777']],
    ['SAUSALITO', 'Sausalito', '94965', 37.859072, -122.485311, ['289', '331']]] },
  '503': { region: 'OR', lata: '672', places: [
    ['PORTLAND', 'Portland', '97201', 45.507856, -122.690341, ['224', '274', '417']],
    ['BEAVERTON', 'Beaverton', '97005', 45.491000, -122.804000, ['520', '643']]] },
  '512': { region: 'TX', lata: '558', places: [
    ['AUSTIN', 'Austin', '78701', 30.271129, -97.743699, ['236', '474', '499']],
    ['ROUNDROCK', 'Round Rock', '78664', 30.514354, -97.668117, ['244', '255']]] },
  '617': { region: 'MA', lata: '128', places: [
    ['BOSTON', 'Boston', '02108', 42.357603, -71.065700, ['227', '248', '367']],
    ['CAMBRIDGE', 'Cambridge', '02139', 42.364679, -71.104202, ['354', '491']]] },
  '702': { region: 'NV', lata: '721', places: [
    ['LAS VEGAS', 'Las Vegas', '89101', 36.172082, -115.122366, ['382', '385', '474']],
    ['HENDERSON', 'Henderson', '89002', 36.000300, -114.961400, ['558', '564']]] },
  '206': { region: 'WA', lata: '674', places: [
    ['SEATTLE', 'Seattle', '98101', 47.611435, -122.330456, ['382', '621', '623']],
    ['SEATTLE', 'Seattle', '98109', 47.631025, -122.347003, ['281', '466']]] },
  '305': { region: 'FL', lata: '460', places: [
    ['MIAMI', 'Miami', '33130', 25.767368, -80.204517, ['358', '374', '579']],
    ['MIAMIBEACH', 'Miami Beach', '33139', 25.782648, -80.134106, ['531', '538', '672']]] },
};
const CA_AREA_CODES = {
  '416': { region: 'ON', lata: null, places: [
    ['TORONTO', 'Toronto', 'M5H', 43.649800, -79.384400, ['214', '363', '860']]] },
  '604': { region: 'BC', lata: null, places: [
    ['VANCOUVER', 'Vancouver', 'V6B', 49.279900, -123.113900, ['331', '685', '899']]] },
  '514': { region: 'QC', lata: null, places: [
    ['MONTREAL', 'Montreal', 'H3B', 45.500800, -73.569300, ['393', '861', '875']]] },
};

const COUNTRIES = {
  US: { name: 'United States', dial: '1', beta: false },
  CA: { name: 'Canada', dial: '1', beta: false },
  GB: { name: 'United Kingdom', dial: '44', beta: false },
  DE: { name: 'Germany', dial: '49', beta: false },
  AU: { name: 'Australia', dial: '61', beta: false },
};

// Pricing v1 catalogue (monthly, as Twilio lists them). price_unit's case
// varies on the real wire, so two countries answer in lower case.
const PRICES = {
  AU: { unit: 'usd', prices: [['local', '3.00', '3.00'], ['mobile', '6.50', '6.50'], ['toll free', '16.00', '16.00']] },
  CA: { unit: 'USD', prices: [['local', '1.15', '1.15'], ['toll free', '2.15', '2.15']] },
  DE: { unit: 'usd', prices: [['local', '1.00', '1.00'], ['toll free', '25.00', '25.00']] },
  ES: { unit: 'USD', name: 'Spain', prices: [['local', '1.00', '1.00'], ['mobile', '12.00', '12.00']] },
  FR: { unit: 'USD', name: 'France', prices: [['local', '1.00', '1.00'], ['mobile', '3.00', '3.00'], ['national', '1.00', '1.00']] },
  GB: { unit: 'USD', prices: [['local', '1.15', '1.15'], ['mobile', '1.15', '1.00']] },
  IE: { unit: 'USD', name: 'Ireland', prices: [['local', '2.00', '2.00'], ['mobile', '12.00', '12.00']] },
  NL: { unit: 'USD', name: 'Netherlands', prices: [['local', '2.00', '2.00'], ['mobile', '3.00', '3.00']] },
  SE: { unit: 'USD', name: 'Sweden', prices: [['local', '3.00', '3.00'], ['mobile', '3.00', '3.00']] },
  US: { unit: 'USD', prices: [['local', '1.15', '1.15'], ['toll free', '2.15', '2.15']] },
};

module.exports = { TYPES, SEARCH_PATHS, US_AREA_CODES, CA_AREA_CODES, COUNTRIES, PRICES };
